"""Check that a downloaded file is what its name says before it is kept (issue #11, item 4).

A ``200`` with an HTML login page, or a PNG cut short with a matching
``Content-Length``, must not become an asset. Images are decoded with Pillow
(``verify()`` walks the chunks and checksums, ``load()`` decodes the pixels);
videos must open in ffmpeg (imageio-ffmpeg's binary, a runtime dependency) with
a video stream that yields a frame. Any failure is a :class:`DownloadError`, which
is retryable: the next attempt may well get the real file.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ...errors import DownloadError
from ...media import ffmpeg_exe, open_bounded

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "INLINE_BYTES", "verify_download", "check_image", "check_video"]

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
VIDEO_EXTS = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"})

#: Images up to this size are decoded on the event loop (faster than a thread hop for
#: a small frame); bigger ones in a worker thread, so the loop keeps serving sockets.
INLINE_BYTES = 512 * 1024
#: How long ffmpeg may take to open a video and decode its first frame.
VIDEO_CHECK_TIMEOUT = 60.0


#: The most pixels a downloaded image may have (8192 x 8192): a small PNG can declare a huge
#: canvas, and decoding it to check it would take gigabytes of memory.
MAX_PIXELS = 8192 * 8192


def check_image(path: Path, data: bytes | None = None, *, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``ValueError`` unless ``path`` (or its bytes ``data``) is a whole image Pillow can decode,
    of at most ``max_pixels`` pixels (checked from the header, before anything is decoded)."""
    source = data if data is not None else path
    with open_bounded(source, max_pixels) as im:  # TooManyPixels, NotAnImage: ValueErrors saying why
        im.verify()  # structure and checksums; the object is unusable afterwards
    with open_bounded(source, max_pixels) as im:
        im.load()  # the pixels themselves (a truncated file fails here)


async def check_video(path: Path, *, timeout: float = VIDEO_CHECK_TIMEOUT) -> None:
    """Raise ``ValueError`` unless ffmpeg opens ``path`` and decodes a first video frame."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path),
        "-map", "0:v:0", "-frames:v", "1", "-f", "framecrc", "-",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    frames = [line for line in out.decode("utf-8", "replace").splitlines() if line and not line.startswith("#")]
    if proc.returncode != 0 or not frames:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no video frame"])[-1]
        raise ValueError(last[:200])


async def verify_download(path: Path, name: str, *, label: str, server: str, data: bytes | None = None) -> None:
    """Decode ``path`` according to the extension of ``name``; :class:`DownloadError` if it does not.

    ``data``: the file's bytes when the caller still has them (small files), to skip reading it back.

    Files of other kinds (text, audio, ...) are only required to be non-empty, which
    the download itself checks.
    """
    ext = Path(name).suffix.lower()
    try:
        if ext in IMAGE_EXTS:
            if data is not None:
                check_image(path, data)
            elif path.stat().st_size <= INLINE_BYTES:
                check_image(path)
            else:
                await asyncio.to_thread(check_image, path)
        elif ext in VIDEO_EXTS:
            await check_video(path)
    except TimeoutError:
        raise DownloadError(
            f"{server} gave {label}, which could not be checked within "
            f"{VIDEO_CHECK_TIMEOUT:g} s (ffmpeg hung); not kept"
        ) from None
    except ValueError as exc:
        kind = "image" if ext in IMAGE_EXTS else "video"
        raise DownloadError(
            f"{server} gave {label}, which is not a valid {kind} ({exc}); not kept"
        ) from None
