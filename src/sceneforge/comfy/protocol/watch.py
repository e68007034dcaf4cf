"""The life of one ComfyUI job as a pure state machine: inputs in, actions out, no I/O.

:class:`JobTracker` never touches the network, the clock or asyncio. The client
(``comfy/protocol/driver.py``) feeds it what happened, with the time it happened, and
carries out the actions it returns. The protocol rules it encodes (``PROTOCOL.md``):

* a job ends at ``executing`` with ``node: null`` and our ``prompt_id``, not at
  ``execution_success``: history may still be empty then (§4.4). Outputs come
  from ``/history``; the websocket's ``executed`` copies are only a last resort;
* ``execution_error`` / ``execution_interrupted`` end the job with the mapped error;
* the time limit runs from ``execution_start``; a queued job may wait
  ``QUEUE_FACTOR`` times the limit (one GPU per server: waiting one's turn is normal);
* a silent socket means reconnect, then poll; a job silent on a live socket is polled;
* a job neither queued nor in history on two polls in a row vanished (a restart);
* ``unreachable_after`` failed polls in a row mean the server is gone;
* the reconnect quirk (``executing`` without ``prompt_id``, §4.3) says nothing about us.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import GenerationError, JobTimeoutError, ServerUnavailableError, TransientError
from .errors_map import execution_error, interrupted_error
from .result import JobResult, dict_of, execution_seconds

__all__ = [
    "QUEUE_FACTOR", "OnEvent", "JobTracker", "Input", "Action",
    "Message", "SocketUp", "SocketDown", "SocketFailed", "History", "Queue", "Unreachable", "Cancelled", "Tick",
    "Emit", "Poll", "PollQueue", "Reconnect", "Cancel", "Done", "Fail",
]

#: ``on_event(kind, data)``; ``data`` is small, JSON-able and secret-free.
OnEvent = Callable[[str, dict[str, Any]], object]

#: How many job time limits a job may spend queued before it starts.
QUEUE_FACTOR = 10


# --- inputs -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    """A decoded websocket text frame ``{"type": ..., "data": {...}}``: ours, another job's or a broadcast."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SocketUp:
    """A reconnect opened a socket that carries our messages; some may have been missed meanwhile."""


@dataclass(frozen=True, slots=True)
class SocketDown:
    """The socket closed or dropped."""


@dataclass(frozen=True, slots=True)
class SocketFailed:
    """A reconnect failed. ``permanent``: websockets are refused (a proxy): poll from now on."""

    permanent: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """The answer of ``GET /history/<prompt_id>``: the entry, or ``None`` while there is none."""

    entry: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Queue:
    """A ``/queue`` snapshot: every prompt id queued or running, and the running ones."""

    ids: frozenset[str]
    running: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A poll could not reach the server (or got an answer it could not use)."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The outcome of a :class:`Cancel`."""

    ok: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (the time itself comes with every input)."""


Input = Message | SocketUp | SocketDown | SocketFailed | History | Queue | Unreachable | Cancelled | Tick


# --- actions ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Emit:
    """Tell ``on_event``; ``data`` gets ``prompt_id`` added."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Poll:
    """Read ``/history/<prompt_id>`` after ``delay`` seconds; answer with :class:`History` or :class:`Unreachable`."""

    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class PollQueue:
    """Read ``/queue``; answer with :class:`Queue` or :class:`Unreachable`."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the socket, open a new one (same clientId); the news comes as SocketUp / SocketFailed."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Remove the job from the server's queue and interrupt it; answer with :class:`Cancelled`."""


@dataclass(frozen=True, slots=True)
class Done:
    """The job finished; ``result`` holds its outputs."""

    result: JobResult


@dataclass(frozen=True, slots=True)
class Fail:
    """The job failed with ``error`` (from the errors tree)."""

    error: Exception


Action = Emit | Poll | PollQueue | Reconnect | Cancel | Done | Fail


class JobTracker:
    """What is known about one submitted job, and what to do next.

    ``limit`` is the job's time limit (s), ``now`` the submission time, ``idle`` how
    long a silent socket is trusted, ``socket`` whether a socket carries this job's
    messages (False: poll only, e.g. a job resumed under another process's clientId).
    """

    def __init__(
        self,
        prompt_id: str,
        *,
        server: str,
        limit: float,
        now: float,
        idle: float = 30.0,
        poll_interval: float = 1.0,
        history_attempts: int = 5,
        unreachable_after: int = 5,
        socket: bool = True,
    ) -> None:
        self.prompt_id = prompt_id
        self.server = server
        self.limit = max(0.0, float(limit))
        self.idle = float(idle)
        self.poll_interval = float(poll_interval)
        self.history_attempts = max(1, int(history_attempts))
        self.unreachable_after = max(1, int(unreachable_after))
        self.submitted = now
        self.started: float | None = None
        self.deadline = now + self.limit * QUEUE_FACTOR
        self.socket = socket  # a socket carries our messages right now
        self.usable = socket  # websockets may be tried at all
        self.last_any = self.last_own = self.last_poll = now
        self.last_recover = -math.inf
        self.ended = False  # executing(null) or a finished history entry: only the result is left to read
        self.over = False  # Done or Fail was returned: nothing more to do
        self.saw_success = False
        self.ws_outputs: dict[str, dict[str, Any]] = {}
        self.cached: list[str] = []
        self.failures = 0  # consecutive polls that could not reach the server
        self.vanished = 0  # consecutive polls that found the job neither queued nor in history
        self.misses = 0  # history reads after the end that found nothing yet

    # --- entry point -------------------------------------------------------------
    def feed(self, event: Input, now: float) -> list[Action]:
        """Take one input (that happened at ``now``) and return the actions it calls for."""
        if self.over:
            return []
        handler = _HANDLERS[type(event)]
        actions: list[Action] = handler(self, event, now)
        if actions and isinstance(actions[-1], (Done, Fail)):
            self.over = True
        return actions

    def next_check(self) -> float:
        """The earliest time a :class:`Tick` can change anything (``inf``: none needed)."""
        if self.over:
            return math.inf
        due = self.deadline
        if self.ended:
            return due
        if not self.socket:
            return min(due, self.last_poll + self.poll_interval)
        due = min(due, self.last_any + self.idle, self.last_own + self.idle)
        if self.vanished:
            due = min(due, self.last_poll + self.poll_interval)
        return due

    # --- websocket -----------------------------------------------------------------
    def _message(self, event: Message, now: float) -> list[Action]:
        self.last_any = now
        data = event.payload.get("data")
        if not isinstance(data, dict) or data.get("prompt_id") != self.prompt_id:
            # Status broadcasts, other jobs, the reconnect quirk: alive, but nothing about us.
            return []
        self.last_own = now
        if self.ended:
            return []
        kind = event.payload.get("type")
        if kind == "executing":
            node = data.get("node")
            if node is None:
                self.ended = True  # history is guaranteed to be stored now (§4.4)
                return [Poll()]
            return [Emit("executing", {"node": str(node)})]
        if kind == "progress":
            return [Emit("progress", {"node": str(data.get("node")), "value": data.get("value"), "max": data.get("max")})]
        if kind == "executed":
            node = str(data.get("node"))
            if isinstance(data.get("output"), dict):
                self.ws_outputs[node] = data["output"]
            return [Emit("executed", {"node": node})]
        if kind == "execution_start":
            self.started = now
            self.deadline = now + self.limit  # the limit is for running, not for waiting one's turn
            return [Emit("started")]
        if kind == "execution_cached":
            self.cached = [str(n) for n in data.get("nodes") or []]
            return [Emit("cached", {"nodes": list(self.cached)})]
        if kind == "execution_success":
            self.saw_success = True  # not the end: history may still be empty (§4.4)
        elif kind == "execution_error":
            return [Fail(execution_error(data, self.server))]
        elif kind == "execution_interrupted":
            return [Fail(interrupted_error(data, self.server))]
        return []

    def _socket_up(self, event: SocketUp, now: float) -> list[Action]:
        self.socket = True
        self.last_any = self.last_own = self.last_poll = now
        # Messages sent while no socket was registered are lost: look once.
        return [Emit("ws_reconnected"), Poll()]

    def _socket_down(self, event: SocketDown, now: float) -> list[Action]:
        self.socket = False
        if not self.usable or now - self.last_recover < self.poll_interval:
            # Dropped again right after a reconnect (a proxy killing sockets?): leave it
            # to the next tick instead of reconnecting in a tight loop.
            return []
        self.last_recover = now
        return [Emit("ws_dropped"), Reconnect()]

    def _socket_failed(self, event: SocketFailed, now: float) -> list[Action]:
        self.socket = False
        self.usable = self.usable and not event.permanent
        self.last_poll = now
        return [Poll()]  # the reconnect is over either way; the poll comes after it

    # --- polling -------------------------------------------------------------------
    def _history(self, event: History, now: float) -> list[Action]:
        self.failures = 0
        entry = event.entry
        if entry:
            return [self._accept(entry)]
        if not self.ended:
            return [PollQueue()]
        self.misses += 1
        if self.misses < self.history_attempts:
            return [Poll(delay=min(self.poll_interval, 0.1 * self.misses))]
        if self.saw_success:
            # Should not happen after executing(null); the websocket copy is the best we have.
            result = JobResult(self.prompt_id, dict(self.ws_outputs), self.server, list(self.cached))
            return [Emit("warning", {"message": f"history of {self.prompt_id} on {self.server} stayed empty; "
                                                "using the websocket's copy of its outputs"}), Done(result)]
        return [Fail(TransientError(f"ComfyUI job {self.prompt_id} ended on {self.server} but left no history"))]

    def _queue(self, event: Queue, now: float) -> list[Action]:
        self.failures = 0
        if self.prompt_id in event.ids:
            self.vanished = 0
            if self.prompt_id in event.running and self.started is None:
                # Polling only (no execution_start seen): its limit starts now.
                self.started = now
                self.deadline = min(self.deadline, now + self.limit)
            return []
        # Not queued and no history. History is written before the job leaves the
        # queue, so twice in a row means the job is gone (server restarted, queue cleared).
        self.vanished += 1
        if self.vanished >= 2:
            return [Fail(TransientError(
                f"ComfyUI job {self.prompt_id} vanished from {self.server}: "
                "it is neither queued nor in the history (was the server restarted?)"
            ))]
        return []

    def _unreachable(self, event: Unreachable, now: float) -> list[Action]:
        self.failures += 1
        if self.failures >= self.unreachable_after:
            return [Fail(ServerUnavailableError(
                f"lost contact with ComfyUI at {self.server} while waiting for job {self.prompt_id}: {event.error}"
            ))]
        return [Poll(delay=self.poll_interval)] if self.ended else []

    def _accept(self, entry: dict[str, Any]) -> Action:
        """A history entry: its error, or the job's outputs."""
        self.ended = True
        status = dict_of(entry.get("status"))
        if status.get("status_str") == "error" or (status and status.get("completed") is False):
            for item in reversed(status.get("messages") or []):
                if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                    if item[0] == "execution_error":
                        return Fail(execution_error(item[1], self.server))
                    if item[0] == "execution_interrupted":
                        return Fail(interrupted_error(item[1], self.server))
            return Fail(GenerationError(f"ComfyUI job {self.prompt_id} failed on {self.server} (no details in history)"))
        outputs = dict_of(entry.get("outputs"))
        return Done(JobResult(self.prompt_id, dict(outputs), self.server, list(self.cached),
                              gpu_seconds=execution_seconds(entry)))

    # --- time ----------------------------------------------------------------------
    def _tick(self, event: Tick, now: float) -> list[Action]:
        if now >= self.deadline:
            self.deadline = math.inf  # one cancel, whose answer ends the job
            return [Cancel()]
        if self.ended:
            return []  # reading the result is already under way
        if not self.socket:
            if now - self.last_poll < self.poll_interval:
                return []
            self.last_poll = now
            if self.usable:
                self.last_recover = now
                return [Emit("polling"), Reconnect()]  # the poll follows the reconnect's news
            return [Poll()]
        if now - self.last_any >= self.idle:
            self.last_any = self.last_recover = now
            return [Emit("ws_idle"), Reconnect()]
        if self.vanished and now - self.last_poll >= self.poll_interval:
            # The last poll found the job neither queued nor finished: look again soon
            # rather than after a whole idle period (a restarted server says nothing).
            self.last_poll = now
            return [Poll()]
        if now - self.last_own >= self.idle:
            self.last_own = self.last_poll = now
            return [Emit("polling"), Poll()]
        return []

    def _cancelled(self, event: Cancelled, now: float) -> list[Action]:
        how = "it was cancelled on the server" if event.ok else "cancelling it on the server failed"
        waited = now - self.submitted
        if self.started is None:
            text = (f"ComfyUI job {self.prompt_id} never started on {self.server}: still queued after {waited:.1f} s "
                    f"(a queued job may wait {QUEUE_FACTOR} x its {self.limit:g} s limit); {how}")
        else:
            text = (f"ComfyUI job {self.prompt_id} did not finish within {self.limit:g} s (its limit, counted from "
                    f"its start) on {self.server}: it ran {now - self.started:.1f} s, {waited:.1f} s since it was "
                    f"submitted; {how}")
        return [Fail(JobTimeoutError(text))]


_HANDLERS: dict[type, Callable[[JobTracker, Any, float], list[Action]]] = {
    Message: JobTracker._message,
    SocketUp: JobTracker._socket_up,
    SocketDown: JobTracker._socket_down,
    SocketFailed: JobTracker._socket_failed,
    History: JobTracker._history,
    Queue: JobTracker._queue,
    Unreachable: JobTracker._unreachable,
    Cancelled: JobTracker._cancelled,
    Tick: JobTracker._tick,
}
