"""One run per topic folder at a time (a file lock under ``.sceneforge/``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from filelock import FileLock, Timeout

from .errors import OutputLockedError
from .layout import TopicLayout

__all__ = ["topic_lock"]


@contextlib.contextmanager
def topic_lock(layout: TopicLayout, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the topic's lock; wait up to ``wait`` seconds, then refuse with a clear message."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(layout.state_dir / "run.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise OutputLockedError(
            f"another sceneforge run is writing {layout.root}; wait for it to finish (or pass --wait-lock SECONDS)"
        ) from None
    try:
        yield
    finally:
        lock.release()
