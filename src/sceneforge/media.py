"""The media files sceneforge reads: images opened within a pixel cap, and the bundled ffmpeg.

:func:`open_bounded` is the one way an image from outside (a download, an upload, a
reference, an asset on disk) is opened: its size is checked from the header before
any pixel is decoded (a small PNG can declare a canvas of gigabytes), Pillow's own
decompression-bomb guard is an error, never a stray warning on stderr, and whatever
Pillow raises for a file that is no whole image (``OSError``, ``SyntaxError`` for a
bad PNG checksum, ``struct.error`` ...) is one :class:`NotAnImage`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike

from PIL import Image

__all__ = ["MAX_PIXELS", "NotAnImage", "TooManyPixels", "open_bounded", "ffmpeg_exe"]

#: More pixels than any model makes or takes (8000 x 8000).
MAX_PIXELS = 64_000_000


class TooManyPixels(ValueError):
    """The image declares more than the cap; ``width``/``height`` are None when Pillow's own
    decompression-bomb guard refused it before its size could be read."""

    def __init__(self, width: int | None, height: int | None, max_pixels: int, why: str = "") -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        text = (f"{width}x{height} is more than {max_pixels:,} pixels" if width is not None
                else f"more pixels than an image may have ({why})")
        super().__init__(text)


class NotAnImage(ValueError):
    """Pillow cannot read the file, or it is not whole; the text is ``<error type>: <its message>``."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"{type(cause).__name__}: {cause}")


@contextmanager
def open_bounded(source: str | PathLike[str] | bytes, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """``source`` (a path, or the file's bytes) opened by Pillow, at most ``max_pixels`` pixels.

    Raises :class:`TooManyPixels` or :class:`NotAnImage` (both ``ValueError``), also for what
    Pillow raises while the block decodes it (``load()``, ``verify()``): keep only Pillow's work
    in the block."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                if im.width * im.height > max_pixels:
                    raise TooManyPixels(im.width, im.height, max_pixels)
                yield im
    except (TooManyPixels, NotAnImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(None, None, max_pixels, str(exc)) from None
    except Exception as exc:  # Pillow raises a zoo of types (OSError, SyntaxError, struct.error...)
        raise NotAnImage(exc) from None


def ffmpeg_exe() -> str:
    """The static ffmpeg bundled with ``imageio-ffmpeg`` (a runtime dependency)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
