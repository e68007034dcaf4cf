"""preview.mp4: one portrait video of all scenes, each shown for exactly its narration.

Each scene shows its motion frames at their fps (held on the last frame when
the narration is longer), else its image with a gentle push-in, with the
narration underneath and subtitles burned in (:mod:`.subtitles`). Frames are
composed in Python and piped as raw RGB into one ffmpeg process (the static one
from ``imageio-ffmpeg``); the narration of every scene is decoded to one
44.1 kHz mono track first, so scenes of different sample rates (22050 Hz
espeak, 24000 Hz edge) join cleanly.

These functions are synchronous and CPU-bound: call them in a thread from async code.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import AssetMissingError, GenerationError, SceneValidationError
from ..fsutil import atomic_path
from ..layout import PREVIEW_NAME
from ..media import ffmpeg_exe
from .assets import RUN_HINT, ResolvedScene, load_scenes, open_cover, resolve_scene
from .subtitles import SubtitleRenderer

__all__ = ["FPS", "PREVIEW_NAME", "PreviewResult", "ProgressCallback", "SAMPLE_RATE", "make_preview"]

FPS = 24
SAMPLE_RATE = 44100
STILL_ZOOM = 1.06  # a still scene pushes in by 6% over its narration: alive, not distracting

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PreviewResult:
    """The preview file and its duration in seconds (the sum of the narration durations)."""

    path: Path
    duration: float


def _scene_ends(scenes: list[ResolvedScene]) -> list[float]:
    """Cumulative end times, starting at 0.0: boundaries from these never drift across scenes."""
    ends = [0.0]
    for sc in scenes:
        if sc.duration is None:
            raise AssetMissingError(
                f"scene {sc.number}: cannot read the duration of audio_path {sc.audio}; {RUN_HINT}"
            )
        ends.append(ends[-1] + sc.duration)
    return ends


def _write_audio(scenes: list[ResolvedScene], bounds: list[int], dest: Path) -> None:
    """Decode every narration to 44.1 kHz mono s16 and join them, each padded or cut to its scene."""
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for sc, (a, b) in zip(scenes, zip(bounds, bounds[1:])):
            want = (b - a) * 2
            cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(sc.audio),
                   "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
            proc = subprocess.run(cmd, capture_output=True, check=False)
            if proc.returncode != 0:
                msg = proc.stderr.decode("utf-8", "replace").strip()[-500:]
                raise GenerationError(f"scene {sc.number}: cannot decode audio_path {sc.audio}: {msg}",
                                      server_message=msg)
            pcm = proc.stdout[:want]
            out.writeframes(pcm + b"\0" * (want - len(pcm)))


def _scene_frames(
    sc: ResolvedScene, count: int, duration: float, w: int, h: int, subs: SubtitleRenderer
) -> Iterator[Image.Image]:
    """Yield ``count`` RGB frames for one scene (one in memory at a time)."""
    cues = subs.cues_for(sc, duration)
    if sc.frames:
        shown, base = -1, None
    else:
        zw, zh = round(w * STILL_ZOOM), round(h * STILL_ZOOM)
        big = open_cover(sc.image, sc.number, zw, zh, Image.Resampling.BICUBIC)  # type: ignore[arg-type]
        bw, bh = big.size
    for k in range(count):
        t = k / FPS
        if sc.frames:
            j = min(int(t * sc.fps), len(sc.frames) - 1)  # hold the last frame once the clip ends
            if j != shown:
                base = open_cover(sc.frames[j], sc.number, w, h)
                shown = j
            frame = base.copy()  # type: ignore[union-attr]
        else:
            z = 1.0 + (STILL_ZOOM - 1.0) * (k / max(1, count - 1))
            cw, ch = bw / z, bh / z
            frame = big.resize((w, h), Image.Resampling.BILINEAR,
                               box=((bw - cw) / 2, (bh - ch) / 2, (bw + cw) / 2, (bh + ch) / 2))
        for start, end, text in cues:
            if start <= t < end:
                img, pos = subs.overlay(text)
                frame.paste(img, pos, img)
                break
        yield frame


def _all_frames(
    scenes: list[ResolvedScene], ends: list[float], frame_bounds: list[int], subs: SubtitleRenderer
) -> Iterator[Image.Image]:
    """Every frame of the preview, scene after scene."""
    for sc, (a, b), start, end in zip(scenes, zip(frame_bounds, frame_bounds[1:]), ends, ends[1:]):
        yield from _scene_frames(sc, b - a, end - start, subs.width, subs.height, subs)


def _encode(
    frames: Iterable[Image.Image], total: int, size: tuple[int, int], wav: Path, dest: Path, log: Path,
    on_progress: ProgressCallback | None,
) -> None:
    """Pipe ``total`` frames and the narration ``wav`` through one ffmpeg into ``dest`` (written atomically)."""
    width, height = size
    with atomic_path(dest) as tmp, log.open("wb") as err:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(FPS),
               "-i", "pipe:0", "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart",
               "-f", "mp4", str(tmp)]  # the temp name ends in .part: name the muxer
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        done = 0
        try:
            if on_progress:
                on_progress(0, total)
            for frame in frames:
                proc.stdin.write(frame.tobytes())  # type: ignore[union-attr]
                done += 1
                if on_progress:
                    on_progress(done, total)
        except BrokenPipeError:
            pass  # ffmpeg died; its log says why
        except BaseException:
            proc.kill()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()  # type: ignore[union-attr]
            rc = proc.wait()
        if rc != 0 or done != total:
            err.flush()
            msg = log.read_text(encoding="utf-8", errors="replace").strip()[-800:]
            raise GenerationError(f"ffmpeg failed to encode {dest} (exit {rc}): {msg}", server_message=msg)


def make_preview(
    topic_dir: Path | str,
    scenes: list[dict[str, Any]] | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    width: int = 720,
    height: int = 1280,
) -> PreviewResult:
    """Render ``topic_dir/preview.mp4`` (H.264 yuv420p + AAC, portrait) from the scenes' assets.

    ``scenes`` default to ``topic_dir/scenes.json``. ``on_progress(done, total)``
    is called with frame counts. Raises :class:`AssetMissingError` naming the
    scene and field when an asset is missing, :class:`GenerationError` when
    ffmpeg fails.
    """
    topic_dir = Path(topic_dir)
    raw = load_scenes(topic_dir) if scenes is None else scenes
    if not raw:
        raise SceneValidationError("no scenes to preview")
    width, height = width - width % 2, height - height % 2  # yuv420p needs even sides
    resolved = [resolve_scene(i, s, topic_dir, need_audio=True) for i, s in enumerate(raw, 1)]
    ends = _scene_ends(resolved)
    frame_bounds = [round(t * FPS) for t in ends]
    subs = SubtitleRenderer(width, height)
    dest = topic_dir / PREVIEW_NAME
    with tempfile.TemporaryDirectory(prefix="sceneforge-preview-") as tmpdir:
        wav = Path(tmpdir) / "narration.wav"
        _write_audio(resolved, [round(t * SAMPLE_RATE) for t in ends], wav)
        frames = _all_frames(resolved, ends, frame_bounds, subs)
        _encode(frames, frame_bounds[-1], (width, height), wav, dest, Path(tmpdir) / "ffmpeg.log", on_progress)
    return PreviewResult(dest, ends[-1])
