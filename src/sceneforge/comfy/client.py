"""An async client for one ComfyUI server (HTTP + one shared websocket, aiohttp).

The protocol facts it relies on are in ``comfyui/PROTOCOL.md``; the ones that shape this code:

* one clientId and one websocket per client carry every job it submits
  (``socket.py``); the socket is open *before* ``POST /prompt``, so no message is missed;
* the job's rules (when it ends, its time limit, the fallback polling) live in the
  pure tracker of ``watch.py``; ``driver.py`` does its I/O;
* the client picks the ``prompt_id`` itself, so it can cancel a job whose
  submission answer was lost, and a retry never leaves a twin running;
* ``/view`` takes ``filename``, ``subfolder`` and ``type`` as separate parameters.

Nothing a server sends is trusted with our memory, disk or time: JSON answers are
capped per endpoint, downloads by size and by an overall deadline, and a download
is decoded before it is renamed into place (issue #11).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from ..errors import JobInterruptedError, ServerUnavailableError, TransientError
from .protocol.driver import emit, follow
from .protocol.errors_map import connection_error, describe_cause, status_error, workflow_error
from .protocol.result import JobResult, dict_of
from .protocol.watch import History, JobTracker, OnEvent
from .transport.files import ComfyFiles
from .transport.http import NET_ERRORS, MiB
from .transport.socket import SharedSocket

__all__ = ["ComfyClient", "JobResult", "OnEvent"]

log = logging.getLogger("sceneforge.comfy")

Sleep = Callable[[float], Awaitable[Any]]


class ComfyClient(ComfyFiles):
    """Talk to one ComfyUI server.

    ``url`` is ``http(s)://[user:password@]host[:port][/prefix]``. ``timeout`` is the
    per-job limit of :meth:`run` (seconds from the job's start, measured with
    ``clock``). ``sleep`` and ``clock`` are injected so tests drive time;
    ``ws_idle_timeout`` is how long a silent websocket is trusted before the client
    reconnects and polls, and ``poll_interval`` the beat of that fallback polling.
    ``http_timeout`` bounds each plain HTTP call. A ``session`` passed in is used and left open.

    Limits against a hostile or broken server (issue #11):

    * ``max_json_bytes``: the largest JSON answer read, one number or a mapping
      endpoint -> bytes over :data:`~sceneforge.comfy.transport.http.DEFAULT_JSON_LIMITS`
      (``/object_info`` 64 MiB: 1.6 MB on a stock server, tens of MB with many
      custom nodes; ``/history`` 32 MiB; ``/queue`` 64 MiB; small endpoints 1 MiB).
    * ``max_download_bytes`` (default 1 GiB): the largest ``/view`` file kept. A 4K
      16-bit PNG frame is ~50 MB and a Wan clip a few tens of MB even at a high
      bitrate, so this leaves ample headroom while a runaway body stops at 1 GiB.
    * ``download_timeout`` (default 600 s): the overall deadline of one download,
      however the bytes trickle in (read timeouts restart with every byte). 1 GiB in
      600 s needs ~14 Mbit/s; a normal frame takes well under a second.
    * ``verify_downloads`` (default on): decode each image/video before keeping it.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 300,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        ws_idle_timeout: float = 30,
        poll_interval: float = 1.0,
        http_timeout: float = 60,
        history_attempts: int = 5,
        unreachable_after: int = 5,
        max_json_bytes: int | Mapping[str, int] | None = None,
        max_download_bytes: int = 1024 * MiB,
        download_timeout: float = 600,
        verify_downloads: bool = True,
    ) -> None:
        super().__init__(url, headers=headers, session=session, http_timeout=http_timeout,
                         max_json_bytes=max_json_bytes)
        self.timeout = float(timeout)
        self.ws_idle_timeout = float(ws_idle_timeout)
        self.poll_interval = float(poll_interval)
        self.history_attempts = max(1, int(history_attempts))
        self.unreachable_after = max(1, int(unreachable_after))
        self.max_download_bytes = int(max_download_bytes)
        self.download_timeout = float(download_timeout)
        self.verify_downloads = bool(verify_downloads)
        self._sleep = sleep
        self._clock = clock
        self._socket = SharedSocket(uuid.uuid4().hex, self.open_ws, clock)
        self._uploads = {}
        #: Set by a service shutting down: a job abandoned by cancellation then stays on the
        #: server (its journal entry lets the next run re-attach) instead of being deleted.
        self.keep_abandoned_jobs = False
        self._foreign: dict[str, tuple[SharedSocket, int]] = {}  # earlier clientIds being resumed: socket, users

    # --- lifecycle ----------------------------------------------------------
    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the websocket, and the HTTP session if this client created it."""
        await self._socket.aclose()
        await self._close_session()

    @property
    def client_id(self) -> str:
        """The clientId every job of this client is submitted under."""
        return self._socket.client_id

    def __repr__(self) -> str:
        return f"ComfyClient({self.server!r})"

    # --- plain HTTP ---------------------------------------------------------
    async def system_stats(self) -> dict[str, Any]:
        """``GET /system_stats``: the health check.

        Raises :class:`ServerUnavailableError` (a ``RuntimeError``) naming the server
        and the cause when it cannot be reached or does not answer like ComfyUI.
        """
        try:
            stats = await self._get_json("system_stats", what="check its health")
        except TransientError as exc:
            raise ServerUnavailableError(str(exc)) from exc
        if not isinstance(stats, dict) or "system" not in stats:
            raise ServerUnavailableError(f"{self.server} does not answer like a ComfyUI server (/system_stats)")
        return stats

    async def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """``GET /object_info`` (all node specs, ~1.6 MB) or one class (``{}`` when unknown)."""
        path = "object_info" if node_class is None else f"object_info/{quote(node_class, safe='')}"
        info = await self._get_json(path, what="read node specs")
        return info if isinstance(info, dict) else {}

    async def queue(self) -> dict[str, Any]:
        """``GET /queue``: ``{"queue_running": [...], "queue_pending": [...]}``."""
        q = await self._get_json("queue", what="read the queue")
        return q if isinstance(q, dict) else {}

    async def queue_snapshot(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(every prompt id running or pending, the running ones)``."""
        q = await self.queue()
        found: dict[str, set[str]] = {"queue_running": set(), "queue_pending": set()}
        for key, ids in found.items():
            items = q.get(key)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, list) and len(item) > 1:
                    ids.add(str(item[1]))
        running = frozenset(found["queue_running"])
        return running | found["queue_pending"], running

    async def queue_ids(self) -> set[str]:
        """Prompt ids running or pending on the server."""
        return set((await self.queue_snapshot())[0])

    async def queue_depth(self) -> int:
        """Jobs running + pending (``GET /prompt`` ``exec_info.queue_remaining``; ``/queue`` as fallback)."""
        info = await self._get_json("prompt", what="read the queue depth")
        try:
            return int(info["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError):
            q = await self.queue()
            return len(q.get("queue_running") or []) + len(q.get("queue_pending") or [])

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of ``prompt_id``, or ``None`` while it has none (pending, running, unknown)."""
        data = await self._get_json(f"history/{prompt_id}", what="read the job history")
        if isinstance(data, dict):
            entry = data.get(prompt_id)
            if isinstance(entry, dict):
                return entry
        return None

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: stop ``prompt_id`` if it is the running job (no id: whatever runs)."""
        await self._post_ok("interrupt", {"prompt_id": prompt_id} if prompt_id else {}, what="interrupt a job")

    async def cancel(self, prompt_id: str) -> None:
        """Remove ``prompt_id`` from the queue and interrupt it if it already runs."""
        await self._post_ok("queue", {"delete": [prompt_id]}, what="remove a job from the queue")
        await self.interrupt(prompt_id)

    def _foreign_socket(self, client_id: str) -> SharedSocket:
        socket, users = self._foreign.get(client_id) or (SharedSocket(client_id, self.open_ws, self._clock), 0)
        self._foreign[client_id] = (socket, users + 1)
        return socket

    async def _release_foreign(self, client_id: str) -> None:
        socket, users = self._foreign[client_id]
        if users > 1:
            self._foreign[client_id] = (socket, users - 1)
            return
        del self._foreign[client_id]
        await socket.aclose()

    async def _abandon(self, prompt_id: str, on_event: OnEvent | None) -> None:
        """A job's waiter was cancelled: cancel the job on the server too, unless jobs are kept."""
        if not self.keep_abandoned_jobs:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.cancel_quietly(prompt_id, on_event=on_event))

    async def cancel_quietly(self, prompt_id: str, *, on_event: OnEvent | None = None) -> bool:
        """:meth:`cancel`, never raising (used on the way out of a failed or abandoned job).

        A failure is told to ``on_event`` as kind ``"warning"`` with ``{"message": ...}``
        (not logged at WARNING: Python's last-resort handler would print it in the
        middle of a progress display).
        """
        try:
            await asyncio.wait_for(self.cancel(prompt_id), timeout=min(self.http_timeout, 10.0))
            return True
        except Exception as exc:  # the original failure matters more than this one
            message = f"could not cancel job {prompt_id} on {self.server}: {describe_cause(exc)}"
            log.info("%s", message)
            emit(on_event, prompt_id, "warning", {"message": message})
            return False

    # --- websocket ----------------------------------------------------------
    async def open_ws(self, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        """Open ``/ws?clientId=...``. ``None`` when the handshake is refused by something
        in between (a proxy without websocket support): jobs are then polled."""
        try:
            return await asyncio.wait_for(
                self._http().ws_connect(
                    self._url("ws", ws=True),
                    params={"clientId": client_id},
                    headers=self._headers,
                    max_msg_size=64 * MiB,  # binary previews can be large; this caps a text frame too
                ),
                timeout=self.http_timeout,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise status_error(exc.status, "", self.server, "open the websocket") from None
            log.info("websocket refused by %s (HTTP %s); polling instead", self.server, exc.status)
            return None
        except NET_ERRORS as exc:
            raise connection_error(exc, self.server, "open the websocket") from exc

    # --- jobs ---------------------------------------------------------------
    async def submit(
        self, graph: Mapping[str, Any], *, client_id: str, prompt_id: str, on_event: OnEvent | None = None
    ) -> tuple[str, float | None]:
        """``POST /prompt``; return ``(prompt_id, number)``.

        400 -> :class:`WorkflowError` (one line per node error), 200 with node errors
        (partial acceptance) -> the accepted part is cancelled and :class:`WorkflowError`
        raised too, since every output is needed; 5xx -> :class:`TransientError`.
        """
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        what = "submit the workflow"
        try:
            status, raw = await self._request("POST", "prompt", what=what, json_body=body)
        except TransientError:
            # The server may have queued it before the answer was lost: make sure it does not run.
            await self.cancel_quietly(prompt_id, on_event=on_event)
            raise
        if status == 400:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            raise workflow_error(parsed if isinstance(parsed, (dict, str)) else str(parsed), self.server)
        if status != 200:
            raise status_error(status, raw.decode("utf-8", "replace"), self.server, what)
        try:
            answer = json.loads(raw)
            accepted_id = str(answer.get("prompt_id") or prompt_id)
        except (ValueError, AttributeError):
            await self.cancel_quietly(prompt_id, on_event=on_event)
            raise TransientError(f"ComfyUI at {self.server}: odd answer to {what}") from None
        if answer.get("node_errors"):
            await self.cancel_quietly(accepted_id, on_event=on_event)
            raise workflow_error(answer, self.server, partial=True)
        number = answer.get("number")
        return accepted_id, number if isinstance(number, (int, float)) else None

    def _tracker(self, prompt_id: str, timeout: float | None, *, socket: bool) -> JobTracker:
        return JobTracker(
            prompt_id, server=self.server, limit=timeout or self.timeout, now=self._clock(),
            idle=self.ws_idle_timeout, poll_interval=self.poll_interval,
            history_attempts=self.history_attempts, unreachable_after=self.unreachable_after, socket=socket,
        )

    async def run(
        self,
        graph: Mapping[str, Any],
        *,
        on_event: OnEvent | None = None,
        on_submit: Callable[[str, str], object] | None = None,
        timeout: float | None = None,
    ) -> JobResult:
        """Queue ``graph`` (API format), wait for it and return its history outputs.

        ``on_event(kind, data)`` hears ``queued``, ``started``, ``cached``,
        ``executing``, ``progress``, ``executed``, the fallback's ``ws_dropped``,
        ``ws_idle``, ``ws_reconnected`` and ``polling``, and ``warning``
        (``{"message": ...}``: something the user should know that did not fail the
        job, e.g. a cancel that did not get through); ``data`` always holds ``prompt_id``.

        ``on_submit(prompt_id, client_id)`` runs just *before* the POST, so a journal can
        remember the job and a later run can :meth:`resume` it after a crash.

        Raises :class:`WorkflowError`, :class:`GenerationError` (``execution_error``),
        :class:`JobInterruptedError`, :class:`JobTimeoutError` (after cancelling the job
        on the server), :class:`TransientError` or :class:`ServerUnavailableError`.
        """
        prompt_id = str(uuid.uuid4())
        socket = self._socket
        channel = socket.register(prompt_id)  # before the socket opens: nothing of this job can slip by
        try:
            await socket.ensure_open()
            tracker = self._tracker(prompt_id, timeout, socket=socket.healthy)
            if on_submit is not None:
                on_submit(prompt_id, socket.client_id)
            accepted, number = await self.submit(
                graph, client_id=socket.client_id, prompt_id=prompt_id, on_event=on_event
            )
            if accepted != prompt_id:
                socket.rename(channel, accepted)
                tracker.prompt_id = prompt_id = accepted
            emit(on_event, prompt_id, "queued", {"number": number, "server": self.server})
            result = await follow(tracker, channel, self, socket, on_event)
            result.number = number
            return result
        except asyncio.CancelledError:
            # Abandoned (Ctrl-C, pipeline shutdown), possibly mid-POST: do not leave the
            # GPU working for nobody. Cancelling an id the server never queued is a no-op.
            await self._abandon(prompt_id, on_event)
            raise
        finally:
            socket.unregister(channel)

    async def resume(
        self, prompt_id: str, client_id: str, *, on_event: OnEvent | None = None, timeout: float | None = None
    ) -> JobResult | None:
        """Re-attach to a job an earlier (killed) run submitted, without running it again.

        Finished: its outputs from history. Still queued or running: wait for it.
        Unknown to the server (restarted, or the POST never arrived), failed or
        interrupted: ``None`` (the caller runs it afresh).

        A job submitted under this client's own clientId is followed on the shared
        socket. One submitted under another clientId (an earlier process) gets a
        socket under that id (one for all the jobs of that id being resumed: ComfyUI
        drops an id when any of its sockets closes), opened before the first look at
        history and closed after the last: ComfyUI sends a prompt's messages only to its
        clientId's socket, and this way the job's end is seen at once and its
        progress reported, instead of polling. Taking the id over is safe because
        its owner is gone: a journaled job's run held the topic's output lock, so
        no live process can still be waiting on that socket (§4.3: the newest
        socket of a clientId wins).
        """
        own = client_id == self._socket.client_id
        socket = self._socket if own else self._foreign_socket(client_id)
        channel = socket.register(prompt_id)
        try:
            await socket.ensure_open()  # before the first look, so no message can be missed
            entry = await self.history(prompt_id)
            if not entry and prompt_id not in await self.queue_ids():
                entry = await self.history(prompt_id)  # it may have finished between the two looks
                if not entry:
                    return None
            tracker = self._tracker(prompt_id, timeout, socket=socket.healthy)
            if entry:
                status = dict_of(entry.get("status"))
                if status.get("status_str") == "error" or status.get("completed") is False:
                    return None  # it failed: a retry must run it again, not re-read the failure
                return await follow(tracker, channel, self, None, on_event, tracker.feed(History(entry), self._clock()))
            emit(on_event, prompt_id, "resumed", {"server": self.server})
            try:
                return await follow(tracker, channel, self, socket, on_event)
            except JobInterruptedError:
                return None  # interrupted (e.g. cancelled when an earlier attempt timed out): run it afresh
            except asyncio.CancelledError:
                await self._abandon(prompt_id, on_event)  # a re-attached job is ours now: cancel it like one
                raise
        finally:
            socket.unregister(channel)
            if not own:
                await self._release_foreign(client_id)
