"""Preview a topic: one portrait MP4 of all scenes, and a contact sheet of them.

``preview.mp4`` shows each scene for exactly its narration: its motion frames
at their fps (held on the last frame when the narration is longer), else its
image with a gentle push-in, with the narration underneath and subtitles burned
in. Frames are composed in Python and piped as raw RGB into one ffmpeg process
(the static one from ``imageio-ffmpeg``); the narration of every scene is
decoded to one 44.1 kHz mono track first, so scenes of different sample rates
(22050 Hz espeak, 24000 Hz edge) join cleanly.

Subtitles are drawn with Pillow rather than ffmpeg's ``subtitles`` filter: the
CJK font file is loaded directly (libass in a static ffmpeg finds fonts through
fontconfig, by family name, and silently falls back to tofu when that fails),
no file path has to survive the filter-argument escaping (``:``, ``'``, ``\\``,
Korean folder names), and we already compose every frame ourselves.

These functions are synchronous and CPU-bound: call them in a thread from async code.
The contact sheet lives in :mod:`sceneforge.contact_sheet` and is re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .contact_sheet import (
    CONTACT_SHEET_NAME,
    SheetGeometry,
    make_contact_sheet,
    sheet_geometry,
)
from .errors import AssetMissingError, GenerationError, SceneValidationError
from .fonts import ellipsize, load_font, wrap_text
from .fsutil import atomic_path

__all__ = [
    "PreviewResult", "SheetGeometry", "make_preview", "make_contact_sheet", "sheet_geometry",
    "load_scenes", "parse_srt", "PREVIEW_NAME", "CONTACT_SHEET_NAME",
]

PREVIEW_NAME = "preview.mp4"
FPS = 24
SAMPLE_RATE = 44100
STILL_ZOOM = 1.06  # a still scene pushes in by 6% over its narration: alive, not distracting
_RUN_HINT = "run `sceneforge run` first"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PreviewResult:
    """The preview file and its duration in seconds (the sum of the narration durations)."""

    path: Path
    duration: float


@dataclass
class _Scene:
    number: int
    script: str
    duration: float | None
    audio: Path | None
    image: Path | None
    frames: list[Path] = field(default_factory=list)
    fps: float = 16.0
    subtitle: Path | None = None


def load_scenes(topic_dir: Path | str) -> list[dict[str, Any]]:
    """The scenes of ``topic_dir/scenes.json`` (an object with ``"scenes"``, or a bare list)."""
    path = Path(topic_dir) / "scenes.json"
    if not path.is_file():
        raise AssetMissingError(f"{path} does not exist; {_RUN_HINT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SceneValidationError(f"{path}: not valid JSON ({exc})") from exc
    scenes = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, dict) for s in scenes):
        raise SceneValidationError(f"{path}: expected a non-empty list of scene objects under \"scenes\"")
    return scenes


def _find(value: Any, topic_dir: Path) -> Path | None:
    """The existing file ``value`` names, or None.

    scenes.json paths are relative to the folder the run started in, or absolute;
    the topic may have moved since. Try the path as given, then relative to the
    topic folder, then by file name (and ``motion_scene_N/name``) inside it.
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        return None
    p = Path(value)
    candidates = [p]
    if not p.is_absolute():
        candidates.append(topic_dir / p)
    candidates.append(topic_dir / p.name)
    if p.parent.name:
        candidates.append(topic_dir / p.parent.name / p.name)
    return next((c for c in candidates if c.is_file()), None)


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _audio_length(path: Path) -> float | None:
    import mutagen

    try:
        info = mutagen.File(str(path))
    except Exception:  # a damaged file: ffmpeg's decode reports it properly later
        return None
    return _positive(getattr(getattr(info, "info", None), "length", None))


def _resolve(n: int, raw: dict[str, Any], topic_dir: Path, *, need_audio: bool) -> _Scene:
    """Find scene ``n``'s files; every path field that is set must exist (subtitles excepted)."""

    def need(field_name: str) -> Path | None:
        value = raw.get(field_name)
        if value in (None, ""):
            return None
        found = _find(value, topic_dir)
        if found is None:
            raise AssetMissingError(f"scene {n}: {field_name} {value} does not exist; {_RUN_HINT}")
        return found

    audio = need("audio_path")
    if audio is None and need_audio:
        raise AssetMissingError(f"scene {n}: audio_path is not set; {_RUN_HINT} (audio stage)")
    frames: list[Path] = []
    listed = raw.get("motion_frames_path") or []
    if isinstance(listed, (str, os.PathLike)):  # a folder of frames
        folder = _find(Path(listed) / "frame_0001.png", topic_dir)
        listed = sorted(folder.parent.glob("frame_*.png")) if folder else [listed]
    for value in listed:
        found = _find(value, topic_dir)
        if found is None:
            raise AssetMissingError(f"scene {n}: motion_frames_path {value} does not exist; {_RUN_HINT}")
        frames.append(found)
    image = need("image_path")
    if image is None and not frames:
        raise AssetMissingError(f"scene {n}: image_path is not set; {_RUN_HINT} (image stage)")
    duration = _positive(raw.get("audio_duration"))
    if duration is None and audio is not None:
        duration = _audio_length(audio)
    fps = _positive(raw.get("motion_fps")) or 16.0
    subtitle = _find(raw.get("subtitle_path"), topic_dir)  # optional: falls back to the script
    return _Scene(n, str(raw.get("script") or ""), duration, audio, image, frames, fps, subtitle)


def _open_cover(path: Path, n: int, w: int, h: int, resample: int = Image.Resampling.BILINEAR) -> Image.Image:
    """Open an asset image and cover-fit it; an unreadable file names its scene."""
    try:
        with Image.open(path) as im:
            return _cover(im, w, h, resample)
    except OSError as exc:  # includes UnidentifiedImageError and truncated files
        raise AssetMissingError(f"scene {n}: {path} is not a readable image ({exc}); regenerate it") from exc


def _cover(img: Image.Image, w: int, h: int, resample: int = Image.Resampling.BILINEAR) -> Image.Image:
    """Scale ``img`` to cover w x h and crop the centre (no letterbox bars)."""
    iw, ih = img.size
    if (iw, ih) == (w, h):
        return img.convert("RGB")
    scale = max(w / iw, h / ih)
    cw, ch = w / scale, h / scale
    box = ((iw - cw) / 2, (ih - ch) / 2, (iw + cw) / 2, (ih + ch) / 2)
    return img.convert("RGB").resize((w, h), resample, box=box, reducing_gap=3.0)


# --- subtitles -------------------------------------------------------------

_TS = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_CUE_TIMES = re.compile(rf"{_TS}\s*-->\s*{_TS}")


def _secs(h: str, m: str, s: str, frac: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """SRT text as (start, end, text) cues in seconds; malformed blocks are skipped."""
    cues = []
    for block in re.split(r"\n\s*\n", text.lstrip("\ufeff").replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            m = _CUE_TIMES.search(line)
            if m:
                body = re.sub(r"<[^>]+>", "", "\n".join(lines[i + 1 :])).strip()
                start, end = _secs(*m.groups()[:4]), _secs(*m.groups()[4:])
                if body and end > start:
                    cues.append((start, end, body))
                break
    return cues


def _script_cues(script: str, duration: float, font: Any, max_w: float) -> list[tuple[float, float, str]]:
    """Split a script into chunks of at most two lines, timed by their share of the characters."""
    chunks: list[str] = []
    for sentence in re.split(r"(?<=[.!?。！？…])\s+|\n+", script.strip()):
        lines = wrap_text(sentence, font, max_w)
        chunks += ["\n".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]
    weights = [max(1, len(re.sub(r"\s", "", c))) for c in chunks]
    total, t, cues = sum(weights), 0.0, []
    for chunk, w in zip(chunks, weights):
        end = t + duration * w / total
        cues.append((t, end, chunk))
        t = end
    return cues


class _Subtitles:
    """Draws cue text once per cue as a small RGBA overlay, reused for every frame it shows on."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        unit = width / 720
        self.font = load_font(max(10, round(40 * unit)))
        self.pad = round(16 * unit)
        self.max_w = width * 0.86 - 2 * self.pad
        self.bottom = round(height * 0.82)  # above the controls short-video players draw at the bottom
        self._cache: dict[str, tuple[Image.Image, tuple[int, int]]] = {}

    def overlay(self, text: str) -> tuple[Image.Image, tuple[int, int]]:
        if text not in self._cache:
            lines = wrap_text(text, self.font, self.max_w)
            if len(lines) > 3:
                lines = lines[:2] + [ellipsize(lines[2], self.font, self.max_w)]
            line_h = round(self.font.size * 1.35)
            w = int(max(self.font.getlength(s) for s in lines) + 2 * self.pad)
            h = line_h * len(lines) + 2 * self.pad
            img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            d.rounded_rectangle((0, 0, w - 1, h - 1), radius=self.pad, fill=(0, 0, 0, 150))
            for i, line in enumerate(lines):
                d.text((w / 2, self.pad + i * line_h), line, font=self.font, fill="white", anchor="ma",
                       stroke_width=max(1, round(self.font.size / 20)), stroke_fill="black")
            self._cache[text] = (img, ((self.width - w) // 2, self.bottom - h))
        return self._cache[text]

    def cues_for(self, sc: _Scene, duration: float) -> list[tuple[float, float, str]]:
        if sc.subtitle is not None:
            cues = parse_srt(sc.subtitle.read_text(encoding="utf-8", errors="replace"))
            if cues:
                return cues
        return _script_cues(sc.script, duration, self.font, self.max_w) if sc.script.strip() else []


# --- preview video ---------------------------------------------------------


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _write_audio(scenes: list[_Scene], bounds: list[int], dest: Path) -> None:
    """Decode every narration to 44.1 kHz mono s16 and join them, each padded or cut to its scene."""
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for sc, (a, b) in zip(scenes, zip(bounds, bounds[1:])):
            want = (b - a) * 2
            cmd = [_ffmpeg(), "-nostdin", "-v", "error", "-i", str(sc.audio),
                   "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
            proc = subprocess.run(cmd, capture_output=True, check=False)
            if proc.returncode != 0:
                msg = proc.stderr.decode("utf-8", "replace").strip()[-500:]
                raise GenerationError(f"scene {sc.number}: cannot decode audio_path {sc.audio}: {msg}",
                                      scene=sc.number, stage="preview", server_message=msg)
            pcm = proc.stdout[:want]
            out.writeframes(pcm + b"\0" * (want - len(pcm)))


def _scene_frames(sc: _Scene, count: int, duration: float, w: int, h: int, subs: _Subtitles) -> Iterator[Image.Image]:
    """Yield ``count`` RGB frames for one scene (one in memory at a time)."""
    cues = subs.cues_for(sc, duration)
    if sc.frames:
        shown, base = -1, None
    else:
        zw, zh = round(w * STILL_ZOOM), round(h * STILL_ZOOM)
        big = _open_cover(sc.image, sc.number, zw, zh, Image.Resampling.BICUBIC)  # type: ignore[arg-type]
        bw, bh = big.size
    for k in range(count):
        t = k / FPS
        if sc.frames:
            j = min(int(t * sc.fps), len(sc.frames) - 1)  # hold the last frame once the clip ends
            if j != shown:
                base = _open_cover(sc.frames[j], sc.number, w, h)
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
    resolved = [_resolve(i, s, topic_dir, need_audio=True) for i, s in enumerate(raw, 1)]
    for sc in resolved:
        if sc.duration is None:
            raise AssetMissingError(
                f"scene {sc.number}: cannot read the duration of audio_path {sc.audio}; {_RUN_HINT}"
            )
    # Scene boundaries from cumulative times, so rounding never drifts across scenes.
    ends = [0.0]
    for sc in resolved:
        ends.append(ends[-1] + sc.duration)  # type: ignore[operator]
    frame_bounds = [round(t * FPS) for t in ends]
    sample_bounds = [round(t * SAMPLE_RATE) for t in ends]
    total = frame_bounds[-1]
    subs = _Subtitles(width, height)
    dest = topic_dir / PREVIEW_NAME

    with tempfile.TemporaryDirectory(prefix="sceneforge-preview-") as tmpdir:
        wav = Path(tmpdir) / "narration.wav"
        _write_audio(resolved, sample_bounds, wav)
        err_path = Path(tmpdir) / "ffmpeg.log"
        with atomic_path(dest) as tmp, err_path.open("wb") as err:
            cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
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
                for sc, (a, b), start, end in zip(resolved, zip(frame_bounds, frame_bounds[1:]), ends, ends[1:]):
                    for frame in _scene_frames(sc, b - a, end - start, width, height, subs):
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
                msg = err_path.read_text(encoding="utf-8", errors="replace").strip()[-800:]
                raise GenerationError(f"ffmpeg failed to encode {dest} (exit {rc}): {msg}",
                                      stage="preview", server_message=msg)
    return PreviewResult(dest, ends[-1])
