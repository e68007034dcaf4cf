"""Run awaitables side by side and, however it ends, return only once every one of them has finished.

:func:`asyncio.gather` completes as soon as one part ends cancelled (or fails), while the
others may still be cleaning up. When a run is stopped, a scene's narration ends at once but
its ComfyUI job is still being deleted and interrupted on the server; a gather then returned,
the engine closed the HTTP session under that cancel, and the command exited with the running
job still on the GPU. :func:`gather_all` waits for every part first (and cancels each part
once only: a second cancel would cut a part's own clean-up short).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["gather_all"]

T = TypeVar("T")


async def gather_all(*parts: Awaitable[T]) -> list[T]:
    """The results of ``parts`` in order (the first failure, in order, is raised), after all have ended.

    Cancelled while waiting, it cancels every unfinished part, waits for them to finish their
    clean-up and then raises :class:`asyncio.CancelledError`. A further cancel during that wait
    is not held off: it is how a caller stops waiting for good.
    """
    tasks = [asyncio.ensure_future(p) for p in parts]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
    return [task.result() for task in tasks]
