"""The I/O around a :class:`~sceneforge.comfy.protocol.watch.JobTracker`: feed it, carry out its actions.

One loop per job. It drains the job's :class:`~sceneforge.comfy.transport.socket.Channel`,
feeds every frame to the tracker and performs what comes back (read history or the
queue, reconnect the shared socket, cancel, finish). A tick (the injected
``sleep``, at most ``poll_interval`` long) runs *alongside* the messages and is
fed whenever it is due, however busy the socket is: a socket that never stops
sending ``status`` cannot starve the time checks (issue #11, item 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ...errors import ServerUnavailableError, TransientError
from ..transport.socket import Channel, SharedSocket
from .result import JobResult
from .watch import (
    Action,
    Cancel,
    Cancelled,
    Done,
    Emit,
    Fail,
    History,
    JobTracker,
    OnEvent,
    Poll,
    PollQueue,
    Queue,
    Reconnect,
    SocketFailed,
    Tick,
    Unreachable,
)

__all__ = ["follow", "emit"]

log = logging.getLogger("sceneforge.comfy")


class JobIO(Protocol):
    """What the loop needs from the client."""

    poll_interval: float
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[Any]]

    async def history(self, prompt_id: str) -> dict[str, Any] | None: ...

    async def queue_snapshot(self) -> tuple[frozenset[str], frozenset[str]]: ...

    async def cancel_quietly(self, prompt_id: str, *, on_event: OnEvent | None = None) -> bool: ...


def emit(on_event: OnEvent | None, prompt_id: str, kind: str, data: dict[str, Any] | None = None) -> None:
    """Report to ``on_event``; a failing callback never breaks the job."""
    if on_event is None:
        return
    try:
        on_event(kind, {"prompt_id": prompt_id, **(data or {})})
    except Exception:  # a progress display must not kill a render
        log.exception("on_event callback failed")


async def follow(
    tracker: JobTracker,
    channel: Channel,
    io: JobIO,
    socket: SharedSocket | None,
    on_event: OnEvent | None,
    first: list[Action] | None = None,
) -> JobResult:
    """Run the job's loop until the tracker says :class:`Done` (return) or :class:`Fail` (raise)."""
    actions: deque[Action] = deque(first or ())
    tick: asyncio.Future[Any] | None = None
    clock = io._clock
    try:
        while True:
            while actions:
                action = actions.popleft()
                if isinstance(action, Done):
                    return action.result
                if isinstance(action, Fail):
                    raise action.error
                actions.extend(await _perform(action, tracker, channel, io, socket, on_event))
            alive, items = channel.take()
            if alive is not None:
                actions.extend(tracker.feed(*alive))
            if items:
                now = clock()
                for item in items:
                    actions.extend(tracker.feed(item, now))
            if tick is not None and tick.done():
                # Checked after every batch of messages, not only when nothing else happened.
                done, tick = tick, None
                done.result()
                actions.extend(tracker.feed(Tick(), clock()))
            if actions:
                continue
            if tick is None:
                span = min(io.poll_interval, tracker.next_check() - clock())
                tick = asyncio.ensure_future(io._sleep(max(0.0, span)))
            await asyncio.wait((channel.waiter(), tick), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if tick is not None and not tick.done():
            tick.cancel()
            with contextlib.suppress(BaseException):
                await tick


async def _perform(
    action: Action,
    tracker: JobTracker,
    channel: Channel,
    io: JobIO,
    socket: SharedSocket | None,
    on_event: OnEvent | None,
) -> list[Action]:
    """Carry out one action; return what the tracker makes of its outcome."""
    pid = tracker.prompt_id
    if isinstance(action, Emit):
        emit(on_event, pid, action.kind, action.data)
        return []
    if isinstance(action, Poll):
        if action.delay:
            await io._sleep(action.delay)
        try:
            entry = await io.history(pid)
        except (ServerUnavailableError, TransientError) as exc:
            return tracker.feed(Unreachable(exc), io._clock())
        return tracker.feed(History(entry), io._clock())
    if isinstance(action, PollQueue):
        try:
            ids, running = await io.queue_snapshot()
        except (ServerUnavailableError, TransientError) as exc:
            return tracker.feed(Unreachable(exc), io._clock())
        return tracker.feed(Queue(ids, running), io._clock())
    if isinstance(action, Reconnect):
        if socket is None or not socket.usable:
            return tracker.feed(SocketFailed(permanent=True), io._clock())
        await socket.reconnect(channel.generation)  # its news arrives in the channel
        return []
    if isinstance(action, Cancel):
        ok = await io.cancel_quietly(pid, on_event=on_event)
        return tracker.feed(Cancelled(ok), io._clock())
    raise TypeError(f"unknown action {action!r}")
