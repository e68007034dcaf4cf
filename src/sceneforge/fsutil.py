"""Atomic file writes: write to a temporary name in the same folder, rename when complete.

A crash at any moment leaves either the old file, the new complete file, or a
``.*.part`` temporary that no reader ever takes for a finished asset.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import OutputWriteError

__all__ = [
    "PART_SUFFIX", "relative_to", "temp_path_for", "atomic_path", "atomic_write_bytes", "atomic_write_json", "replace_dir",
    "remove_stale_parts",
]

PART_SUFFIX = ".part"

_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


def temp_path_for(path: Path) -> Path:
    """A unique hidden temporary name next to ``path``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")


def _wrap_os_error(exc: OSError, path: Path) -> OutputWriteError:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "the folder is not writable"
    else:
        why = exc.strerror or str(exc)
    err = OutputWriteError(exc.errno or 0, f"cannot write {path}: {why}")
    err.filename = str(path)
    return err


@contextlib.contextmanager
def atomic_path(path: Path | str, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on clean exit rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    An empty result is treated as a failure, so a 0-byte asset never appears.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _wrap_os_error(exc, path.parent) from exc
    tmp = temp_path_for(path)
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise OutputWriteError(errno.EIO, f"refusing to write an empty file to {path}")
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # Only storage failures become OutputWriteError; network errors raised by the
        # caller inside the block (aiohttp's are OSErrors too) pass through unchanged.
        if isinstance(exc, OutputWriteError) or exc.errno not in _STORAGE_ERRNOS:
            raise
        raise _wrap_os_error(exc, path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as pretty UTF-8 JSON, atomically."""
    data = json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    return atomic_write_bytes(path, data)


def relative_to(path: Path | str, root: Path) -> Path:
    """``path`` relative to ``root``: directly when it was built from ``root`` (no file system
    lookups), else after resolving both. ValueError when it lies outside."""
    try:
        return Path(path).relative_to(root)
    except ValueError:
        return Path(path).resolve().relative_to(root.resolve())


def replace_dir(src: Path, dest: Path) -> None:
    """Move a finished folder into place, replacing an older one (readers see the old or the new, whole)."""
    if dest.exists():
        trash = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.old{PART_SUFFIX}")
        dest.rename(trash)
        src.rename(dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        src.rename(dest)


def remove_stale_parts(folder: Path) -> int:
    """Delete temporaries left by a killed run (recursively). Returns how many."""
    n = 0
    if not folder.is_dir():
        return 0
    for p in sorted(folder.rglob(f".*{PART_SUFFIX}"), key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n
