"""Checked downloads (ComfyUI's ``/view``, an endpoint's outputs) and checks on server-supplied names.

A download is bounded three ways (issue #11): its size (``max_download_bytes``,
announced or actual), its duration (``download_timeout``, enforced by the client
around the whole transfer) and its content (``verify.py`` decodes it before it is
renamed into place). Whatever fails leaves nothing at the destination.

A server (or anything pretending to be one) chooses the ``filename`` and
``subfolder`` it reports. They are only ever sent back as query parameters,
never used as local paths, and refused outright when they look like traversal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp

from ...errors import DownloadError, GenerationError, UnsafePathError
from ...fsutil import atomic_path
from ..protocol.errors_map import connection_error, status_error
from .http import ERROR_BODY_LIMIT, size_text
from .verify import INLINE_BYTES, verify_download

__all__ = [
    "check_server_name", "check_file_ref", "stream_to_file", "fetch_to_file", "download_checked", "check_view_status",
    "deadline_error", "not_found", "VIEW_TYPES", "Opener",
]

#: Opens the request of a download, given the read timeout it is to use.
Opener = Callable[[aiohttp.ClientTimeout], AbstractAsyncContextManager[aiohttp.ClientResponse]]

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


async def stream_to_file(
    resp: aiohttp.ClientResponse, tmp: Path, *, label: str, where: str, max_bytes: int, keep: int = 0
) -> bytes | None:
    """Write the body of ``resp`` to ``tmp``; return it too when it is at most ``keep`` bytes.

    (A small file is then checked from memory instead of being read back from disk.)

    Refused: a body larger than ``max_bytes`` (announced or actual: writing stops at
    the cap), shorter than ``Content-Length``, cut off, or empty. Each is a
    :class:`DownloadError`; the caller's temporary file is removed with it. ``where`` names the source
    in messages (``ComfyUI at URL: /view``, an endpoint's name).
    """
    expected = resp.content_length
    where = f"{where} gave {label}"
    too_big = f"{where}, which is larger than {size_text(max_bytes)} (the setting comfy_max_download_mb); not kept"
    if expected is not None and expected > max_bytes:
        raise DownloadError(f"{too_big} (it announced {size_text(expected)})")
    received = 0
    kept: list[bytes] | None = [] if keep else None
    try:
        with tmp.open("wb") as fh:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadError(too_big)
                fh.write(chunk)
                if kept is not None:
                    if received <= keep:
                        kept.append(chunk)
                    else:
                        kept = None  # big: checked from disk, off the event loop
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError) as exc:
        announced = "?" if expected is None else expected
        raise DownloadError(f"{where}, which ended early after {received} of {announced} bytes") from exc
    if expected is not None and received != expected:
        raise DownloadError(f"{where}: {received} bytes, {expected} announced")
    if received == 0:
        # An empty "image" is a server-side failure worth another try, not an asset.
        raise DownloadError(f"{where} empty")
    return b"".join(kept) if kept is not None else None


async def check_view_status(resp: aiohttp.ClientResponse, label: str, server: str, what: str) -> None:
    """Map a non-200 answer of ``/view``."""
    if resp.status == 200:
        return
    if resp.status == 404:
        raise not_found(label, server)
    if resp.status in (400, 403):
        raise UnsafePathError(f"ComfyUI at {server} refused to serve {label!r} (HTTP {resp.status})")
    excerpt = await resp.content.read(ERROR_BODY_LIMIT)
    raise status_error(resp.status, excerpt.decode("utf-8", "replace"), server, what)


async def fetch_to_file(
    request: Callable[[], AbstractAsyncContextManager[aiohttp.ClientResponse]], tmp: Path, *, label: str,
    server: str, where: str, deadline: float, max_bytes: int, keep: int,
    check: Callable[[aiohttp.ClientResponse], Awaitable[None]],
) -> bytes | None:
    """One bounded download into ``tmp``: ``request()`` opened, ``check`` on its answer, the body capped at
    ``max_bytes`` and finished within ``deadline`` seconds in all (however slowly it trickles); what fails is
    sceneforge's own error naming the server and the file (see :func:`stream_to_file`)."""
    what = f"download {label}"
    try:
        async with asyncio.timeout(deadline) as budget:
            async with request() as resp:
                await check(resp)
                return await stream_to_file(resp, tmp, label=label, where=where, max_bytes=max_bytes, keep=keep)
    except TimeoutError as exc:
        if budget.expired():
            raise deadline_error(label, where, deadline, tmp) from None
        raise connection_error(exc, server, what) from exc
    except (aiohttp.ClientError, ConnectionError) as exc:
        # Not every OSError: a full disk must reach atomic_path as a storage error.
        raise connection_error(exc, server, what) from exc


async def download_checked(
    source: Opener | bytes, dest: Path, *, name: str, label: str, server: str, where: str, http_timeout: float,
    deadline: float, max_bytes: int, verify: bool, check: Callable[[aiohttp.ClientResponse], Awaitable[None]],
) -> Path:
    """Write one file to ``dest`` atomically: the body of the request ``source`` opens (within
    :func:`fetch_to_file`'s bounds), or ``source`` itself (bytes already at hand), decoded as the image or
    video ``name`` says before it is kept when ``verify``. Whatever fails leaves nothing at ``dest``;
    messages name the source by ``where`` and the file by ``label``."""
    with atomic_path(dest) as tmp:
        if isinstance(source, bytes):
            tmp.write_bytes(source)
            body: bytes | None = source if len(source) <= INLINE_BYTES else None
        else:
            read_timeout = aiohttp.ClientTimeout(total=None, sock_connect=http_timeout, sock_read=http_timeout)
            body = await fetch_to_file(lambda: source(read_timeout), tmp, label=label, server=server, where=where,
                                       deadline=deadline, max_bytes=max_bytes,
                                       keep=INLINE_BYTES if verify else 0, check=check)
        if verify:
            await verify_download(tmp, name, label=label, server=where, data=body)
    return dest


def deadline_error(label: str, where: str, timeout: float, tmp: Path) -> DownloadError:
    """The overall download deadline passed (a trickling body resets read timeouts forever)."""
    try:
        got = f"{size_text(tmp.stat().st_size)} received"
    except OSError:
        got = "nothing received"
    return DownloadError(
        f"{where} did not give {label} within {timeout:g} s "
        f"(the setting comfy_download_timeout; {got}); not kept"
    )


def not_found(label: str, server: str) -> GenerationError:
    """The server lists a file it cannot serve (404)."""
    return GenerationError(f"ComfyUI at {server} has no file {label} (HTTP 404 from /view)")
