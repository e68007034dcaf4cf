"""Small pictures of a scene for a multimodal agent: the image, and a few frames of its motion.

Each is decoded with Pillow (a file that is not an image, or far more pixels than any
model makes, is skipped, never sent), scaled to at most :data:`MAX_SIDE` pixels on its
long side and encoded as JPEG (PNG when it has transparency).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..media import open_bounded

__all__ = ["Thumb", "thumbnail", "pick_frames", "MAX_SIDE", "FRAMES"]

MAX_SIDE = 768
#: Frames of a motion shown: the first, the middle and the last.
FRAMES = 3
_MAX_FILE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Thumb:
    data: bytes
    mime_type: str
    width: int
    height: int


def thumbnail(path: Path, max_side: int = MAX_SIDE) -> Thumb | None:
    """``path`` as a picture at most ``max_side`` px on its long side; None when it is not a usable image."""
    try:
        if path.stat().st_size > _MAX_FILE:
            return None
        with open_bounded(path) as im:
            im.load()
            alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            pic = im.convert("RGBA" if alpha else "RGB")
    except (OSError, ValueError):  # missing, not an image, more pixels than any model makes
        return None
    pic.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if alpha:
        pic.save(buf, "PNG", optimize=True)
        return Thumb(buf.getvalue(), "image/png", pic.width, pic.height)
    pic.save(buf, "JPEG", quality=85)
    return Thumb(buf.getvalue(), "image/jpeg", pic.width, pic.height)


def pick_frames(frames: list[Path], count: int = FRAMES) -> list[Path]:
    """``count`` frames spread evenly over ``frames`` (the first and the last among them)."""
    if len(frames) <= count:
        return list(frames)
    if count == 1:
        return [frames[len(frames) // 2]]
    step = (len(frames) - 1) / (count - 1)
    return [frames[round(i * step)] for i in range(count)]
