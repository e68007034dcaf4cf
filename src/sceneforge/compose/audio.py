"""The soundtrack: narrations cut to their slots, music looped and ducked under them, loudness normalised.

Made in two steps before the picture:

1. *Mix* (one ffmpeg, audio only, seconds for a long video): each narration is
   decoded (skipping an MP3 encoder delay no header announces: see
   :func:`.inputs.encoder_lead`), resampled to 48 kHz stereo, padded with silence and cut to exactly
   its slot (:meth:`.Timeline.samples`), and the slots are concatenated, so no
   narration overlaps another or is lost. ``--music`` is looped over the whole
   video, faded in and out, and compressed by the narration (``sidechaincompress``):
   it drops about 15-20 dB while someone speaks and comes back between scenes.
   The mix is written as 32-bit float WAV (no clipping before normalisation).
2. *Loudness*: the mix is measured with ffmpeg's ``ebur128`` (integrated
   loudness, true peak); a linear gain brings it to the target (-14 LUFS by
   default), followed by a limiter run at 4x oversampling (so it limits true
   peaks) with its ceiling 0.5 dB under the true-peak target. Limiting lowers
   the loudness a little, so the chain is measured again and the gain corrected
   (at most three rounds, until within 0.3 LU). The picture pass applies the
   final chain while it encodes AAC.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..media import ffmpeg_exe
from .process import run_ffmpeg
from .timeline import Timeline

__all__ = ["RATE", "Loudness", "mix_command", "measure", "normalise_chain", "fit_loudness"]

RATE = 48_000
_STEREO = f"aresample={RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
_I = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-inf)\s*LUFS")
_TP = re.compile(r"True peak:\s*\n\s*Peak:\s*(-?[\d.]+|-inf)\s*dBFS")


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS) and true peak (dBTP); ``-inf`` for silence."""

    integrated: float
    true_peak: float


def _fades(total: float) -> tuple[float, float]:
    """Music fade-in and fade-out lengths: 1 s and 2 s, shorter for a short video."""
    return min(1.0, total * 0.1), min(2.0, total * 0.15)


def _music_chain(index: int, timeline: Timeline, volume: float) -> list[str]:
    total = timeline.duration
    fade_in, fade_out = _fades(total)
    end = timeline.total_frames * RATE // timeline.fps
    return [
        f"[{index}:a]{_STEREO},atrim=end_sample={end},asetpts=N/SR/TB,volume={volume:.4f},"
        f"afade=t=in:d={fade_in:.3f},afade=t=out:st={total - fade_out:.3f}:d={fade_out:.3f}[music]",
        "[narr]asplit=2[voice][key]",
        "[music][key]sidechaincompress=threshold=0.01:ratio=20:attack=10:release=250:knee=2:makeup=1[ducked]",
        "[voice][ducked]amix=inputs=2:duration=first:normalize=0[mix]",
    ]


def mix_command(narrations: list[Path], leads: list[float], music: Path | None, timeline: Timeline, dest: Path,
                music_volume: float) -> list[str]:
    """The ffmpeg command that writes the un-normalised mix of the whole video to ``dest``
    (``leads``: seconds of encoder delay to skip at the start of each narration)."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y",
           "-progress", "pipe:1"]
    for path in narrations:
        cmd += ["-i", str(path)]
    graph = []
    for i in range(len(narrations)):
        first, end = timeline.samples(i, RATE)
        skip = f"atrim=start={leads[i]:.6f},asetpts=N/SR/TB," if leads[i] > 0 else ""
        graph.append(f"[{i}:a]{skip}{_STEREO},apad,atrim=end_sample={end - first},asetpts=N/SR/TB[n{i}]")
    graph.append("".join(f"[n{i}]" for i in range(len(narrations)))
                 + f"concat=n={len(narrations)}:v=0:a=1[narr]")
    if music is not None:
        cmd += ["-stream_loop", "-1", "-i", str(music)]
        graph += _music_chain(len(narrations), timeline, music_volume)
    else:
        graph.append("[narr]anull[mix]")
    return cmd + ["-filter_complex", ";".join(graph), "-map", "[mix]", "-c:a", "pcm_f32le", "-f", "wav", str(dest)]


def _db(text: str) -> float:
    return -math.inf if text == "-inf" else float(text)


def measure(wav: Path, chain: str, work: Path, cancel: threading.Event | None = None) -> Loudness:
    """Loudness of ``wav`` after the filter ``chain`` (may be empty), with ffmpeg's ``ebur128``."""
    af = f"{chain + ',' if chain else ''}ebur128=peak=true:framelog=verbose"
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", "-progress", "pipe:1",
           "-i", str(wav), "-af", af, "-f", "null", "-"]
    log = run_ffmpeg(cmd, cwd=work, log=work / "loudness.log", what="the loudness measurement", cancel=cancel)
    summary = log[log.rfind("Summary:"):]
    m_i, m_tp = _I.search(summary), _TP.search(summary)
    if not (m_i and m_tp):
        raise ValueError(f"ffmpeg's ebur128 summary was not found in its log: {summary[-300:]!r}")
    return Loudness(_db(m_i.group(1)), _db(m_tp.group(1)))


def normalise_chain(gain_db: float, ceiling_db: float) -> str:
    """Gain, then a 4x-oversampled limiter at ``ceiling_db`` (latency compensated), back at 48 kHz."""
    limit = 10 ** (ceiling_db / 20)
    return (f"volume={gain_db:.3f}dB,aresample={RATE * 4},"
            f"alimiter=limit={limit:.5f}:attack=1:release=60:level=0:latency=1,aresample={RATE}")


def fit_loudness(wav: Path, target: float, true_peak: float, work: Path,
                 cancel: threading.Event | None = None) -> str:
    """The filter chain that brings ``wav`` to ``target`` LUFS with true peaks under ``true_peak``."""
    ceiling = true_peak - 0.5
    level = measure(wav, "", work, cancel)
    if not math.isfinite(level.integrated):
        return "anull"  # silence: nothing to normalise
    gain = target - level.integrated
    chain = normalise_chain(gain, ceiling)
    for _ in range(3):
        got = measure(wav, chain, work, cancel)
        if not math.isfinite(got.integrated) or abs(got.integrated - target) <= 0.3:
            break
        gain += target - got.integrated
        chain = normalise_chain(gain, ceiling)
    return chain
