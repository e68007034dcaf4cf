"""Length-prefixed messages over a pipe: a JSON header and an optional binary blob.

The wire format between sceneforge and its worker processes (see
:mod:`sceneforge.tts.pipe_pool`): a 4-byte big-endian header length, the header
as UTF-8 JSON (an object, with ``"blob"`` = the blob's length), then the blob.
Standard library only, so a worker started as a plain file can load it without
importing sceneforge. Sizes are capped on reading: a confused peer cannot make
the reader allocate without bound.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

__all__ = ["MAX_HEADER", "MAX_BLOB", "FrameError", "write_message", "read_message"]

MAX_HEADER = 16 << 20  # 16 MB of JSON: a request holds one scene's text
MAX_BLOB = 256 << 20  # 256 MB: an hour of 48 kbps MP3 is 22 MB
_LEN = struct.Struct(">I")


class FrameError(ValueError):
    """The peer sent something that is not a message (or one too large)."""


def write_message(fh: IO[bytes], header: dict[str, Any], blob: bytes = b"") -> None:
    """Write one message and flush it."""
    head = json.dumps({**header, "blob": len(blob)}, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    fh.write(_LEN.pack(len(head)) + head)
    if blob:
        fh.write(blob)
    fh.flush()


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError(f"the pipe closed after {len(data)} of {n} bytes")
    return data


def read_message(fh: IO[bytes], *, max_header: int = MAX_HEADER, max_blob: int = MAX_BLOB) -> tuple[dict[str, Any], bytes] | None:
    """The next message as ``(header, blob)``; None when the pipe closed cleanly between messages.

    Raises :class:`EOFError` when it closes inside a message, :class:`FrameError` on garbage.
    """
    first = fh.read(_LEN.size)
    if not first:
        return None
    if len(first) != _LEN.size:
        raise EOFError("the pipe closed inside a message")
    (n,) = _LEN.unpack(first)
    if n > max_header:
        raise FrameError(f"message header of {n} bytes is over the {max_header}-byte limit")
    try:
        header = json.loads(_read_exact(fh, n))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"unreadable message header: {exc}") from None
    size = header.get("blob") if isinstance(header, dict) else None
    if not isinstance(size, int) or not 0 <= size <= max_blob:
        raise FrameError(f"bad blob length {size!r}")
    return header, _read_exact(fh, size) if size else b""
