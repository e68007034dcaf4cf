"""One websocket per :class:`ComfyClient`, shared by all its jobs (issue #10).

ComfyUI sends every execution message of a prompt to the socket whose clientId
equals the prompt's ``client_id`` (PROTOCOL.md §4.3). A client therefore uses one
clientId for all the jobs it submits, keeps one socket open under it, and a single
reader task hands each frame to the job it is about (by ``prompt_id``):

* a job registers its :class:`Channel` (with the prompt id it chose) and makes sure
  the socket is open *before* its ``POST /prompt``, so none of its messages is missed;
  frames of a prompt id nobody registered yet are kept briefly and replayed;
* frames about no job (``status`` broadcasts, the reconnect quirk) only prove the
  socket alive: every channel keeps the latest one, without waking its job;
* a drop is told to every job; the first job to ask reconnects (same clientId) and
  every job hears :class:`SocketUp` and polls once, since messages sent while no
  socket was registered are lost. The old socket is closed *before* the new one is
  opened: closing an old duplicate unregisters the clientId on the server and would
  silence the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import aiohttp

from ...errors import ServerUnavailableError, TransientError
from ..protocol.watch import Input, Message, SocketDown, SocketFailed, SocketUp

__all__ = ["Channel", "SharedSocket"]

log = logging.getLogger("sceneforge.comfy")

#: Frames of prompt ids no job registered (yet) that are kept for a late registration.
_UNCLAIMED = 256
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

#: ComfyUI serializes frames as ``json.dumps({"type": event, "data": data})``.
_PROGRESS_STATE = '{"type": "progress_state"'
_ALIVE = Message({})

OpenWs = Callable[[str], Awaitable[aiohttp.ClientWebSocketResponse | None]]


class Channel:
    """The inbox of one job: its own frames in order, plus the latest sign of life of the socket."""

    __slots__ = ("prompt_id", "inbox", "alive", "alive_at", "generation", "_waiter")

    def __init__(self, prompt_id: str, generation: int) -> None:
        self.prompt_id = prompt_id
        self.inbox: deque[Input] = deque()
        self.alive: Message | None = None  # the newest frame not about this job
        self.alive_at = 0.0
        self.generation = generation  # the last connection attempt this job has heard of
        self._waiter: asyncio.Future[None] | None = None

    def push(self, item: Input) -> None:
        """Queue an input for the job and wake it."""
        if isinstance(item, (SocketUp, SocketFailed, SocketDown)):
            self.alive = None  # older than this news
        self.inbox.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def touch(self, message: Message, at: float) -> None:
        """Record a sign of life without waking the job (it only matters at its next tick)."""
        self.alive = message
        self.alive_at = at

    def take(self) -> tuple[tuple[Message, float] | None, list[Input]]:
        """Everything received since the last call: ``((sign of life, when) or None, inputs)``."""
        alive = (self.alive, self.alive_at) if self.alive is not None else None
        self.alive = None
        items = list(self.inbox)
        self.inbox.clear()
        return alive, items

    def waiter(self) -> asyncio.Future[None]:
        """A future done at the next :meth:`push` (at once if inputs are waiting)."""
        fut = self._waiter
        if fut is None or fut.done():
            fut = self._waiter = asyncio.get_running_loop().create_future()
        if self.inbox:
            fut.set_result(None)
        return fut


class SharedSocket:
    """The websocket of one clientId and the reader that dispatches its frames."""

    def __init__(self, client_id: str, open_ws: OpenWs, clock: Callable[[], float]) -> None:
        self.client_id = client_id
        self._open_ws = open_ws
        self._clock = clock
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.usable = True  # False once a handshake was refused (a proxy without websockets)
        self.generation = 0  # connection attempts so far
        self.channels: dict[str, Channel] = {}
        self._unclaimed: deque[tuple[str, Message]] = deque(maxlen=_UNCLAIMED)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _check_loop(self) -> None:
        """A client reused under a new event loop (sync wrappers run one per call) starts afresh:
        a socket, reader or lock of a finished loop cannot be used, nor even closed, from this one."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self.ws, self._reader, self._lock = None, None, asyncio.Lock()

    @property
    def healthy(self) -> bool:
        """An open socket with its reader running."""
        return self.ws is not None and not self.ws.closed and self._reader is not None

    # --- jobs -----------------------------------------------------------------------
    def register(self, prompt_id: str) -> Channel:
        """A channel for ``prompt_id``, with any frames of it that arrived before."""
        channel = Channel(prompt_id, self.generation)
        self.channels[prompt_id] = channel
        if self._unclaimed:
            kept = [m for pid, m in self._unclaimed if pid == prompt_id]
            for message in kept:
                channel.push(message)
        return channel

    def rename(self, channel: Channel, prompt_id: str) -> None:
        """The server accepted the job under another id than the one we chose."""
        if self.channels.get(channel.prompt_id) is channel:
            del self.channels[channel.prompt_id]
        channel.prompt_id = prompt_id
        self.channels[prompt_id] = channel
        for pid, message in self._unclaimed:
            if pid == prompt_id:
                channel.push(message)

    def unregister(self, channel: Channel) -> None:
        if self.channels.get(channel.prompt_id) is channel:
            del self.channels[channel.prompt_id]

    # --- connection -------------------------------------------------------------------
    async def ensure_open(self) -> bool:
        """Open the socket unless it is healthy; ``False`` when websockets are refused (poll).

        Raises the mapped error when the server cannot be reached at all.
        """
        self._check_loop()
        if self.healthy:
            return True
        async with self._lock:
            if not self.healthy and self.usable:
                await self._connect(raise_errors=True)
        return self.healthy

    async def reconnect(self, seen: int) -> None:
        """Reconnect, unless an attempt newer than ``seen`` was made (its news is on its way)."""
        self._check_loop()
        async with self._lock:
            if self.generation != seen:
                return
            await self._connect(raise_errors=False)

    async def _connect(self, *, raise_errors: bool) -> None:
        """Close the old socket, open a new one, tell every job how it went."""
        await self._drop()  # the old one first (§4.3)
        self.generation += 1
        try:
            ws = await self._open_ws(self.client_id)
        except (ServerUnavailableError, TransientError) as exc:
            log.info("websocket failed: %s", exc)
            self._notify(SocketFailed(permanent=False))
            if raise_errors:
                raise
            return
        if ws is None:
            self.usable = False
            self._notify(SocketFailed(permanent=True))
            return
        self.ws = ws
        self._reader = asyncio.create_task(self._read(ws))
        if self.generation > 1:
            self._notify(SocketUp())  # messages sent meanwhile are lost: every job polls once
        else:
            for channel in self.channels.values():
                channel.generation = self.generation

    def _notify(self, item: Input) -> None:
        for channel in list(self.channels.values()):
            channel.generation = self.generation  # this job has heard of the newest attempt
            channel.push(item)

    async def _drop(self) -> None:
        # The pending receive must be gone before ws.close(): aiohttp's close waits
        # for a reader it believes is still waiting.
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)

    async def aclose(self) -> None:
        """Stop the reader and close the socket."""
        self._check_loop()
        async with self._lock:
            await self._drop()

    # --- reading ----------------------------------------------------------------------
    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type in _CLOSED:
                    break
                else:  # binary previews: not needed, but the socket is alive
                    self._touch_all(_ALIVE)
        except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError):
            pass
        if self.ws is ws:  # not replaced meanwhile: it died on its own
            self._reader = None
            self.ws = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)
            self._notify(SocketDown())

    def _dispatch(self, text: str) -> None:
        if text.startswith(_PROGRESS_STATE):
            # The most frequent and largest frame (every node's state, resent on each change)
            # tells a job nothing it uses: a sign of life, not worth parsing.
            self._touch_all(_ALIVE)
            return
        try:
            payload = json.loads(text)  # the only parse of a frame
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        message = Message(payload)
        data = payload.get("data")
        pid = data.get("prompt_id") if isinstance(data, dict) else None
        channel = self.channels.get(pid) if isinstance(pid, str) else None
        if channel is not None:
            channel.push(message)
        elif isinstance(pid, str):
            self._unclaimed.append((pid, message))
        self._touch_all(message, skip=channel)

    def _touch_all(self, message: Message, skip: Channel | None = None) -> None:
        if self.channels:
            now = self._clock()
            for channel in self.channels.values():
                if channel is not skip:
                    channel.touch(message, now)
