"""Frames from a finished ComfyUI motion job: which outputs are the frames, and decoding a video.

``pick_frames``/``pick_video`` choose among a job's outputs; ``extract_frames``
decodes a video into ``frame_0001.png`` ... with the ffmpeg of imageio-ffmpeg (or
Pillow for animated PNG/WebP), one frame at a time, so memory never grows with
the number of frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from ..comfy.protocol.result import JobResult
from ..errors import GenerationError
from ..fsutil import atomic_path
from ..layout import TopicLayout
from ..media import ffmpeg_exe

__all__ = ["VIDEO_EXTS", "pick_frames", "pick_video", "extract_frames", "discard", "to_png"]

#: Video containers whose file is kept as the clip's video (and decoded by ffmpeg when it is all there is).
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov")
#: Animated images: decoded with Pillow (ffmpeg cannot read animated WebP); not kept as a video.
_ANIMATED_IMAGE_EXTS = (".png", ".apng", ".webp", ".gif")
_FFMPEG_TIMEOUT = 600.0


def pick_frames(result: JobResult) -> list[dict[str, Any]]:
    """The still frames of a job: saved (``output``) stills before previews (``temp``), and of those
    the node that produced the most (a workflow may also save, say, its start image), in output order."""
    stills = result.still_images()
    saved = [r for r in stills if r.get("type", "output") == "output"]
    stills = saved or stills
    by_node: dict[str, list[dict[str, Any]]] = {}
    for ref in stills:
        by_node.setdefault(str(ref.get("node")), []).append(ref)
    if not by_node:
        return []
    return max(by_node.values(), key=len)  # max keeps the first of equals: output order


def pick_video(result: JobResult) -> dict[str, Any] | None:
    """The first animated output, preferring a real video container (mp4 first) over animated images."""
    animated = [r for r in result.images() if r.get("animated")]

    def rank(ref: dict[str, Any]) -> int:
        ext = Path(str(ref["filename"])).suffix.lower()
        return VIDEO_EXTS.index(ext) if ext in VIDEO_EXTS else len(VIDEO_EXTS) + (
            0 if ext in _ANIMATED_IMAGE_EXTS else 1)

    return min(animated, key=rank) if animated else None


_FPS_RE = re.compile(r"Stream #\d+:\d+.*?: Video:.*?(\d+(?:\.\d+)?) fps")


async def extract_frames(video: Path, work_dir: Path, *, ffmpeg: str | None = None,
                         timeout: float = _FFMPEG_TIMEOUT) -> tuple[list[Path], float | None]:
    """Decode ``video`` into ``work_dir/frame_0001.png`` ...; return the frames and the video's fps.

    Real videos go through ffmpeg (one subprocess, every frame kept as it is: ``-fps_mode
    passthrough``, or ``-vsync 0`` for an ffmpeg older than 5.1); animated PNG/WebP through
    Pillow. Raises :class:`GenerationError` when nothing can be decoded.
    """
    video, work_dir = Path(video), Path(work_dir)
    if video.suffix.lower() in _ANIMATED_IMAGE_EXTS:
        return await asyncio.to_thread(_split_animated_image, video, work_dir)
    if ffmpeg is None:
        ffmpeg = ffmpeg_exe()
    pattern = str(work_dir / "frame_%04d.png")
    last = ""
    for sync in (["-fps_mode", "passthrough"], ["-vsync", "0"]):
        args = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", str(video), *sync,
                "-start_number", "1", pattern]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:  # timeout or cancellation: do not leave ffmpeg running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await proc.wait()
            _remove_frames(work_dir)
            raise
        last = err.decode("utf-8", "replace")
        if proc.returncode == 0:
            break
        _remove_frames(work_dir)
        if "Unrecognized option" not in last:
            break
    frames = sorted(work_dir.glob("frame_*.png"))
    if proc.returncode != 0 or not frames:
        _remove_frames(work_dir)
        tail = " | ".join(line.strip() for line in last.strip().splitlines()[-3:])
        raise GenerationError(f"could not extract frames from {video.name} with ffmpeg: {tail or 'no frames'}")
    m = _FPS_RE.search(last)
    return frames, float(m.group(1)) if m else None


def _split_animated_image(video: Path, work_dir: Path) -> tuple[list[Path], float | None]:
    from PIL import Image, ImageSequence

    frames: list[Path] = []
    fps: float | None = None
    try:
        with Image.open(video) as im:
            duration = im.info.get("duration")
            fps = 1000.0 / duration if isinstance(duration, (int, float)) and duration > 0 else None
            for i, frame in enumerate(ImageSequence.Iterator(im), 1):
                dest = work_dir / TopicLayout.frame_name(i)
                with atomic_path(dest) as tmp:
                    frame.convert("RGB").save(tmp, "PNG", compress_level=1)
                frames.append(dest)
    except OSError as exc:
        _remove_frames(work_dir)
        raise GenerationError(f"could not read the frames of {video.name}: {exc}") from exc
    if not frames:
        raise GenerationError(f"{video.name} holds no frames")
    return frames, fps


def _remove_frames(work_dir: Path) -> None:
    for p in Path(work_dir).glob("frame_*.png"):
        with contextlib.suppress(OSError):
            p.unlink()


def discard(paths: list[Path]) -> None:
    """Remove files written so far (a list that is then emptied)."""
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()
    paths.clear()


def to_png(src: Path, dest: Path) -> None:
    from PIL import Image

    with Image.open(src) as im, atomic_path(dest) as tmp:
        im.convert("RGB").save(tmp, "PNG", compress_level=1)

