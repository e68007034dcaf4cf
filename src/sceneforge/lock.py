"""One run per topic folder at a time (a file lock under ``.sceneforge/``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

from filelock import FileLock, Timeout

from .errors import ConfigError, OutputLockedError
from .layout import TopicLayout

__all__ = ["topic_lock", "atopic_lock"]


@contextlib.contextmanager
def topic_lock(layout: TopicLayout, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the topic's lock; wait up to ``wait`` seconds, then refuse with a clear message."""
    _make_state_dir(layout)
    lock = FileLock(str(layout.state_dir / "run.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise _locked(layout) from None
    try:
        yield
    finally:
        lock.release()


def _make_state_dir(layout: TopicLayout) -> None:
    try:
        layout.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"the topic folder {layout.root} cannot be made: {exc.strerror}; "
                          "choose another output folder (--out)") from None


def _locked(layout: TopicLayout) -> OutputLockedError:
    return OutputLockedError(
        f"another sceneforge run is writing {layout.root}; wait for it to finish (or pass --wait-lock SECONDS)"
    )


@contextlib.asynccontextmanager
async def atopic_lock(layout: TopicLayout, *, wait: float = 0.0) -> AsyncIterator[None]:
    """:func:`topic_lock` for async code: waiting polls without blocking the event loop,
    so other topics' downloads and websockets keep going meanwhile."""
    _make_state_dir(layout)
    lock = FileLock(str(layout.state_dir / "run.lock"))
    deadline = time.monotonic() + wait
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            if time.monotonic() >= deadline:
                raise _locked(layout) from None
            await asyncio.sleep(0.1)
    try:
        yield
    finally:
        lock.release()
