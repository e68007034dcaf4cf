"""Follow one submitted ComfyUI job to its end: websocket first, polling as the fallback.

The loop waits on two things at once: the next websocket message and a "tick"
(the injected ``sleep(poll_interval)``). Messages drive the normal case; ticks
check the deadline, notice a socket that dropped or went silent, reconnect it
(same clientId) and poll ``/history`` + ``/queue`` so a missed ``executing(null)``
cannot strand the job. Because both the tick and the deadline go through the
injected ``sleep``/``clock``, tests run timeouts without waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from ..errors import (
    GenerationError,
    JobTimeoutError,
    ServerUnavailableError,
    TransientError,
)
from .errors_map import execution_error, interrupted_error
from .result import JobResult

if TYPE_CHECKING:
    from .client import ComfyClient

__all__ = ["JobWatch", "OnEvent"]

log = logging.getLogger("sceneforge.comfy")

#: ``on_event(kind, data)``; ``data`` is small, JSON-able and secret-free.
OnEvent = Callable[[str, dict[str, Any]], object]

#: How many job time limits a job may spend queued before it starts.
QUEUE_FACTOR = 10

_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def _cancel(fut: asyncio.Future[Any] | None) -> None:
    if fut is not None and not fut.done():
        fut.cancel()
        with contextlib.suppress(BaseException):
            await fut


class JobWatch:
    """State of one job being waited for. Used by :meth:`ComfyClient.run` only."""

    def __init__(
        self,
        client: ComfyClient,
        *,
        client_id: str,
        prompt_id: str,
        ws: aiohttp.ClientWebSocketResponse | None,
        deadline: float,
        on_event: OnEvent | None,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.prompt_id = prompt_id
        self.ws = ws
        self.ws_usable = ws is not None  # False once a handshake was refused: poll only
        self.deadline = deadline
        # The time limit is for running, not queueing: it restarts when the job starts,
        # so a job queued behind a long one (one GPU per server) is not cut short.
        self.span = max(0.0, deadline - client._clock())
        # While queued the limit is generous (QUEUE_FACTOR times the job's), so a job whose
        # server is stuck still ends, but waiting one's turn behind a long job does not.
        self.deadline = client._clock() + self.span * QUEUE_FACTOR
        self._on_event = on_event
        # Two clocks of silence: any frame proves the socket alive; a frame about *this*
        # job proves it is being told about the job. Silence on the first means
        # reconnect, on the second only a poll (a long queue ahead is normal).
        self.last_any = self.last_own = client._clock()
        self.finished = False
        self.entry: dict[str, Any] | None = None
        self.ws_outputs: dict[str, dict[str, Any]] = {}
        self.cached: list[str] = []
        self.saw_success = False
        self.failures = 0  # consecutive polls that could not reach the server
        self.vanished = 0  # consecutive polls that found the job neither queued nor in history
        self._last_recover = float("-inf")
        self._recv: asyncio.Future[Any] | None = None
        self._tick: asyncio.Future[Any] | None = None

    # --- plumbing -------------------------------------------------------------
    def emit(self, kind: str, **data: Any) -> None:
        """Report to ``on_event``; a failing callback never breaks the job."""
        if self._on_event is None:
            return
        try:
            self._on_event(kind, {"prompt_id": self.prompt_id, **data})
        except Exception:  # a progress display must not kill a render
            log.exception("on_event callback failed")

    async def close(self) -> None:
        """Stop background reads and close the socket."""
        await self._stop_recv()
        tick, self._tick = self._tick, None
        await _cancel(tick)
        await self._close_ws()

    async def _stop_recv(self) -> None:
        # The pending receive must be gone before ws.close(): aiohttp's close waits
        # for a reader it believes is still waiting.
        recv, self._recv = self._recv, None
        await _cancel(recv)

    async def _close_ws(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), timeout=2)

    # --- main loop ------------------------------------------------------------
    async def wait(self) -> JobResult:
        """Block until the job ends; return its outputs or raise the mapped error."""
        clock = self.client._clock
        while not self.finished:
            now = clock()
            if now >= self.deadline:
                await self._give_up()
            if self.ws is not None and self._recv is None:
                self._recv = asyncio.ensure_future(self.ws.receive())
            if self._tick is None:
                span = max(0.0, min(self.client.poll_interval, self.deadline - now))
                self._tick = asyncio.ensure_future(self.client._sleep(span))
            pending = {f for f in (self._recv, self._tick) if f is not None}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if self._recv is not None and self._recv in done:
                fut, self._recv = self._recv, None
                await self._on_ws(fut)
                continue  # a finished tick is still there for the next round
            if self._tick is not None and self._tick in done:
                fut, self._tick = self._tick, None
                fut.result()
                await self._on_tick()
        return await self._collect()

    async def _give_up(self) -> None:
        cancelled = await self.client.cancel_quietly(self.prompt_id)
        how = "it was cancelled on the server" if cancelled else "cancelling it on the server failed"
        raise JobTimeoutError(
            f"ComfyUI job {self.prompt_id} did not finish within {round(self.span, 1):g} s "
            f"on {self.client.server}; {how}"
        )

    # --- websocket ------------------------------------------------------------
    async def _on_ws(self, fut: asyncio.Future[Any]) -> None:
        try:
            msg = fut.result()
        except (TimeoutError, aiohttp.ClientError, OSError, RuntimeError):
            msg = None
        if msg is None or msg.type in _CLOSED:
            if self.client._clock() - self._last_recover < self.client.poll_interval:
                # Dropped again right after a reconnect (a proxy killing sockets?):
                # leave it to the next tick instead of reconnecting in a tight loop.
                await self._stop_recv()
                await self._close_ws()
                return
            await self._recover("ws_dropped")
            return
        self.last_any = self.client._clock()
        if msg.type != aiohttp.WSMsgType.TEXT:
            return  # binary previews: not needed
        try:
            payload = json.loads(msg.data)
        except ValueError:
            return
        if isinstance(payload, dict):
            self._handle(payload)

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        data = msg.get("data")
        if not isinstance(data, dict) or data.get("prompt_id") != self.prompt_id:
            # status broadcasts, other jobs, and the reconnect quirk (an `executing`
            # without prompt_id) say nothing about the end of *this* job.
            return
        self.last_own = self.client._clock()
        server = self.client.server
        if kind == "executing":
            node = data.get("node")
            if node is None:
                self.finished = True  # history is guaranteed to be stored now (§4.4)
            else:
                self.emit("executing", node=str(node))
        elif kind == "progress":
            self.emit("progress", node=str(data.get("node")), value=data.get("value"), max=data.get("max"))
        elif kind == "executed":
            node = str(data.get("node"))
            output = data.get("output")
            if isinstance(output, dict):
                self.ws_outputs[node] = output
            self.emit("executed", node=node)
        elif kind == "execution_start":
            self.deadline = self.client._clock() + self.span
            self.emit("started")
        elif kind == "execution_cached":
            self.cached = [str(n) for n in data.get("nodes") or []]
            self.emit("cached", nodes=self.cached)
        elif kind == "execution_success":
            self.saw_success = True  # not the end: history may still be empty (§4.4)
        elif kind == "execution_error":
            raise execution_error(data, server)
        elif kind == "execution_interrupted":
            raise interrupted_error(data, server)

    # --- fallback -------------------------------------------------------------
    async def _on_tick(self) -> None:
        now = self.client._clock()
        idle = self.client.ws_idle_timeout
        if self.ws is None:
            await self._recover("polling")
        elif now - self.last_any >= idle:
            await self._recover("ws_idle")
        elif self.vanished:
            # The last poll found the job neither queued nor finished: look again at
            # once rather than after a whole idle period (a restarted server says nothing).
            await self._poll()
        elif now - self.last_own >= idle:
            self.last_own = now
            self.emit("polling")
            await self._poll()

    async def _recover(self, why: str) -> None:
        """Reconnect (when possible) and then poll.

        Order matters twice over: the old socket is closed *before* the new one
        opens, because closing a stale socket unregisters its clientId on the
        server and would silence the new one (§4.3); and the poll comes *after*
        the reconnect, so an end that happens in between is seen by one of them.
        """
        self.emit(why)
        self._last_recover = self.client._clock()
        await self._stop_recv()
        await self._close_ws()
        if self.ws_usable:
            try:
                self.ws = await self.client.open_ws(self.client_id)
            except (ServerUnavailableError, TransientError) as exc:
                log.info("reconnect to %s failed: %s", self.client.server, exc)
            else:
                if self.ws is None:
                    self.ws_usable = False
                else:
                    self.emit("ws_reconnected")
        self.last_any = self.last_own = self.client._clock()
        await self._poll()

    async def _poll(self) -> None:
        """One look at ``/history`` and ``/queue``: finished, still there, or lost."""
        try:
            entry = await self.client.history(self.prompt_id)
            queued = None if entry else await self.client.queue_ids()
        except (ServerUnavailableError, TransientError) as exc:
            self.failures += 1
            if self.failures >= self.client.unreachable_after:
                raise ServerUnavailableError(
                    f"lost contact with ComfyUI at {self.client.server} while waiting for job {self.prompt_id}: {exc}"
                ) from exc
            return
        self.failures = 0
        if entry:
            self._accept(entry)
            return
        if queued is not None and self.prompt_id in queued:
            self.vanished = 0
            return
        # Not queued and no history. History is written before the job leaves the
        # queue, so twice in a row means the job is gone (server restarted, queue cleared).
        self.vanished += 1
        if self.vanished >= 2:
            raise TransientError(
                f"ComfyUI job {self.prompt_id} vanished from {self.client.server}: "
                "it is neither queued nor in the history (was the server restarted?)"
            )

    def _accept(self, entry: dict[str, Any]) -> None:
        """A history entry: raise its error, or mark the job finished."""
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error" or (status and status.get("completed") is False):
            for item in reversed(status.get("messages") or []):
                if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                    if item[0] == "execution_error":
                        raise execution_error(item[1], self.client.server)
                    if item[0] == "execution_interrupted":
                        raise interrupted_error(item[1], self.client.server)
            raise GenerationError(
                f"ComfyUI job {self.prompt_id} failed on {self.client.server} (no details in history)"
            )
        self.entry = entry
        self.finished = True

    async def _collect(self) -> JobResult:
        """Read the outputs from history, polling briefly if it is still empty."""
        entry = self.entry
        attempt = 0
        while entry is None:
            entry = await self.client.history(self.prompt_id)
            if entry is not None:
                self._accept(entry)
                break
            attempt += 1
            if attempt >= self.client.history_attempts:
                break
            await self.client._sleep(min(self.client.poll_interval, 0.1 * attempt))
        if entry is not None:
            outputs = entry.get("outputs") if isinstance(entry.get("outputs"), dict) else {}
        elif self.saw_success:
            # Should not happen after executing(null); the websocket copy is the best we have.
            log.warning("history of %s on %s stayed empty; using websocket outputs", self.prompt_id, self.client.server)
            outputs = self.ws_outputs
        else:
            raise TransientError(
                f"ComfyUI job {self.prompt_id} ended on {self.client.server} but left no history"
            )
        return JobResult(self.prompt_id, dict(outputs), self.client.server, list(self.cached))
