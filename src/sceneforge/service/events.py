"""Live events: a per-topic broadcast, and the Server-Sent Events stream with ``Last-Event-ID`` replay.

Every event the service keeps has the same shape, whether it came from the engine
(``run_started`` ... ``scene_done``, the ``--events`` objects) or from the service
itself (``status``, ``preview_done``, ``compose_done``, ``scene_edited``, ``take_restored``, ``deleted``)::

    {"id": 17, "kind": "scene_done", "slug": "...", "topic": "...", "stage": "image", "scene": 3,
     "data": {...}, "time": 1749634200.123}

On the wire each is one SSE message: ``id: 17`` and ``data: <the JSON>``, with no
``event:`` line, so a browser's ``EventSource.onmessage`` gets them all and reads
``kind``. A client that reconnects with ``Last-Event-ID`` (browsers do it by
themselves) first gets what it missed from the topic's events file, then the live
ones: it subscribes before it reads the file, and skips what it already sent.

What one client may cost is bounded: the replay is read from the file a chunk at a
time in a thread (:class:`.eventlog.EventReader`), never as a whole; a client that
stops reading holds at most one chunk and the socket's buffers, and is dropped when a
write has waited ``send_timeout`` seconds (:class:`SSEResponse`); a live listener
more than :data:`MAX_BACKLOG` events behind is dropped too (it reconnects and replays).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Send

from .eventlog import json_line
from .store import TopicStore

__all__ = ["EventHub", "Subscription", "sse_stream", "sse_message", "MAX_BACKLOG", "SSEResponse", "StalledClient"]

log = logging.getLogger("sceneforge.service")

#: Events one subscriber may have waiting; a client that slow is dropped (it reconnects and replays).
MAX_BACKLOG = 2_000
_CLOSE: dict[str, Any] = {"kind": "__close__"}


class Subscription:
    """One listener's queue of a topic's events."""

    def __init__(self, hub: EventHub, slug: str) -> None:
        self.hub = hub
        self.slug = slug
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def put(self, event: dict[str, Any]) -> None:
        if self.queue.qsize() >= MAX_BACKLOG:
            self.hub.unsubscribe(self)
            self.queue.put_nowait(_CLOSE)
            return
        self.queue.put_nowait(event)

    async def get(self, timeout: float | None) -> dict[str, Any] | None:
        """The next event; None after ``timeout`` seconds without one; ``_CLOSE`` at the end."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """Per-topic fan-out of events to the connected streams (in memory; the file is the history)."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self.closed = False

    def subscribe(self, slug: str) -> Subscription:
        sub = Subscription(self, slug)
        if self.closed:
            sub.queue.put_nowait(_CLOSE)
        else:
            self._subs.setdefault(slug, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.slug)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.slug]

    def publish(self, slug: str, event: dict[str, Any]) -> None:
        for sub in list(self._subs.get(slug, ())):
            sub.put(event)

    def close_topic(self, slug: str) -> None:
        """End every stream of a topic (it was deleted)."""
        for sub in list(self._subs.pop(slug, ())):
            sub.queue.put_nowait(_CLOSE)

    def close_all(self) -> None:
        """End every stream (the service is stopping), so no connection keeps it waiting."""
        self.closed = True
        for slug in list(self._subs):
            self.close_topic(slug)

    def listeners(self, slug: str) -> int:
        return len(self._subs.get(slug, ()))


def sse_message(event: dict[str, Any]) -> bytes:
    """One SSE message: ``id`` and a single ``data`` line (JSON has no raw newlines)."""
    return b"id: %d\ndata: %s\n\n" % (event["id"], json_line(event))


class StalledClient(Exception):
    """A stream's client stopped reading for longer than the send timeout: its connection is dropped."""


class SSEResponse(StreamingResponse):
    """A streaming response whose every write must go through within ``send_timeout`` seconds."""

    def __init__(self, content: AsyncIterator[bytes], *, send_timeout: float, **kw: Any) -> None:
        super().__init__(content, media_type="text/event-stream", **kw)
        self.send_timeout = send_timeout

    async def stream_response(self, send: Send) -> None:
        async def timed(message: dict[str, Any]) -> None:
            try:
                await asyncio.wait_for(send(message), self.send_timeout)
            except TimeoutError:
                raise StalledClient(f"an event stream's client read nothing for {self.send_timeout:g} s") from None

        try:
            await super().stream_response(timed)  # type: ignore[arg-type]
        finally:
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                await closing()  # its subscription ends now, not when the generator is collected


async def _replay(store: TopicStore, slug: str, after: int) -> AsyncIterator[tuple[int, bytes]]:
    """The kept events after ``after``, read and framed a chunk at a time off the loop: ``(the chunk's last
    id, its SSE messages)``, one write each."""
    reader = await asyncio.to_thread(store.event_reader, slug, after)
    try:
        while (messages := await asyncio.to_thread(reader.messages)) is not None:
            if messages:
                yield messages[-1][0], b"".join(message for _, message in messages)
    finally:
        await asyncio.to_thread(reader.close)


async def sse_stream(slug: str, after: int, store: TopicStore, hub: EventHub, *, idle: Callable[[], bool],
                     until_idle: bool = False, keepalive: float = 15.0) -> AsyncIterator[bytes]:
    """The SSE body for one client: the kept events after ``after``, then live ones.

    With ``until_idle`` the stream ends once the topic has no job queued or running
    (what a script waiting for a job wants); otherwise it stays open, with a comment
    line every ``keepalive`` seconds so proxies do not close it.
    """
    with hub.subscribe(slug) as sub:
        yield b"retry: 3000\n\n"
        last = after
        async for ident, message in _replay(store, slug, after):
            last = ident
            yield message
        while True:
            if until_idle and idle() and sub.queue.empty():
                return
            event = await sub.get(keepalive)
            if event is None:
                yield b": keep-alive\n\n"
            elif event is _CLOSE:
                return
            elif event["id"] > last:
                last = event["id"]
                yield sse_message(event)
