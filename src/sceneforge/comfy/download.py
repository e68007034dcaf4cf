"""Checked downloads from ComfyUI's ``/view`` and checks on server-supplied names.

A server (or anything pretending to be one) chooses the ``filename`` and
``subfolder`` it reports. They are only ever sent back as query parameters,
never used as local paths, and refused outright when they look like traversal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from ..errors import DownloadError, GenerationError, UnsafePathError
from ..fsutil import atomic_path

__all__ = ["check_server_name", "check_file_ref", "stream_to_file", "not_found", "VIEW_TYPES"]

#: The folder types /view knows; anything else is a 400 on the real server.
VIEW_TYPES = frozenset({"output", "input", "temp"})

_CHUNK = 256 * 1024


def check_server_name(value: Any, what: str, *, allow_slash: bool) -> str:
    """Return ``value`` if it is a harmless relative name, else raise :class:`UnsafePathError`.

    Refused: ``..`` anywhere, a leading ``/``, any backslash, NUL, and (for file
    names) any ``/``. ``what`` names the field in the message; the value itself is
    shown with ``repr`` so control characters stay visible.
    """
    if not isinstance(value, str):
        raise UnsafePathError(f"server {what} is not a string: {value!r}")
    bad = (
        ".." in value
        or value.startswith("/")
        or "\\" in value
        or "\x00" in value
        or (not allow_slash and "/" in value)
    )
    if bad:
        raise UnsafePathError(f"refusing server {what} {value!r}: it could escape its folder")
    return value


def check_file_ref(ref: dict[str, Any]) -> tuple[str, str, str]:
    """Validate a history file ref; return ``(filename, subfolder, type)``."""
    if not isinstance(ref, dict) or not ref.get("filename"):
        raise UnsafePathError(f"not a ComfyUI file reference: {ref!r}")
    filename = check_server_name(ref["filename"], "filename", allow_slash=False)
    subfolder = check_server_name(ref.get("subfolder") or "", "subfolder", allow_slash=True)
    kind = ref.get("type") or "output"
    if kind not in VIEW_TYPES:
        raise UnsafePathError(f"refusing server file type {kind!r}")
    return filename, subfolder, kind


async def stream_to_file(resp: aiohttp.ClientResponse, dest: Path, *, label: str) -> Path:
    """Write the body of ``resp`` to ``dest`` atomically, checking its length.

    A body shorter than ``Content-Length`` (or cut off) raises :class:`DownloadError`
    and leaves neither ``dest`` nor a temporary file behind.
    """
    expected = resp.content_length
    received = 0
    with atomic_path(dest) as tmp:
        try:
            with tmp.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            announced = "?" if expected is None else expected
            raise DownloadError(f"download of {label} ended early after {received} of {announced} bytes") from exc
        if expected is not None and received != expected:
            raise DownloadError(f"download of {label} got {received} bytes, the server announced {expected}")
        if received == 0:
            # An empty "image" is a server-side failure worth another try, not an asset.
            raise DownloadError(f"download of {label} was empty")
    return dest


def not_found(label: str, server: str) -> GenerationError:
    """The server lists a file it cannot serve (404)."""
    return GenerationError(f"ComfyUI at {server} has no file {label} (HTTP 404 from /view)")
