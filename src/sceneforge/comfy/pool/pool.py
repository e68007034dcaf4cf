"""A pool of ComfyUI servers (one GPU each) shared by the image and motion stages.

Each job leases a slot on the healthy server with the least work in flight.
A server holds at most ``depth`` leases (one running on the GPU plus one queued
behind it), so its GPU never waits for the client and no server hoards work.
A serverless endpoint (a member with ``elastic = True``) holds its own
``concurrency`` (default 4): it scales workers with its queue. Work goes where it
finishes first: a server with an idle GPU, then an endpoint, then a server's
queued slot (the endpoint takes the overflow).
Waiting jobs are served by priority, then arrival: motion (priority 0) before
new images (priority 1), so a scene's motion starts as soon as its image exists.

When a server stops answering, it leaves the pool and the job moves to another
server at once (this is not a retry: nothing finished is redone). A background
probe brings it back when it answers again. When *every* server is down (a
single GPU box restarting), jobs wait up to ``outage_grace`` seconds for one to
come back before failing, so a ComfyUI restart does not fail the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ...config import redact_url
from ...errors import ServerUnavailableError

__all__ = ["ComfyPool", "PoolClient", "PooledServer", "PRIORITY_MOTION", "PRIORITY_IMAGE"]

T = TypeVar("T")
PRIORITY_MOTION = 0
PRIORITY_IMAGE = 1


class PoolClient(Protocol):
    """What the pool needs of a server's client (:class:`sceneforge.comfy.client.ComfyClient` is one).

    ``url`` is the redacted URL; ``system_stats`` is the health check: it raises
    :class:`ServerUnavailableError` when the server does not answer.
    """

    @property
    def url(self) -> str: ...

    async def system_stats(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...

    #: When set, a job abandoned by cancellation stays where it runs (its journal entry
    #: lets the next run re-attach) instead of being cancelled there.
    keep_abandoned_jobs: bool


C = TypeVar("C", bound=PoolClient)


@dataclass
class PooledServer(Generic[C]):
    """One server's state in the pool."""

    client: C
    index: int
    healthy: bool = True
    in_flight: float = 0.0
    leases: int = 0
    depth: int = 2
    #: What a GPU second costs on this member (``price_per_second`` of its comfy_urls table), if known.
    price_per_second: float | None = None
    jobs_done: int = 0
    last_error: str = ""
    probe: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return redact_url(self.client.url)


def _cause(s: PooledServer) -> str:
    err = s.last_error or ("up" if s.healthy else "down")
    return err if s.name in err else f"{s.name}: {err}"


def _preference(s: PooledServer) -> tuple[int, float, int, int]:
    """Lower first: a server with an idle GPU, an endpoint (by its load), a server's queued slot."""
    if getattr(s.client, "elastic", False):
        return (1, s.in_flight / max(1, s.depth), s.leases, s.index)
    return (0 if s.leases == 0 else 2, s.in_flight, s.leases, s.index)


def is_server_down(exc: BaseException) -> bool:
    """Failures that mean the server itself stopped answering (not a bad job)."""
    return isinstance(exc, ServerUnavailableError)


class ComfyPool(Generic[C]):
    """Lease ComfyUI servers to jobs; fail over when one dies.

    Shared by the image and motion backends of every topic of a run (or of a service):
    the engine owns it and closes it.
    """

    def __init__(
        self,
        clients: list[C],
        *,
        depth: int = 2,
        probe_interval: float = 5.0,
        outage_grace: float = 120.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, PooledServer], None] | None = None,
    ) -> None:
        if not clients:
            raise ValueError("a pool needs at least one server")
        self.servers: list[PooledServer[C]] = [
            PooledServer(c, i, depth=int(getattr(c, "concurrency", None) or depth),
                         price_per_second=getattr(c, "price_per_second", None))
            for i, c in enumerate(clients)
        ]
        self.depth = depth
        self.probe_interval = probe_interval
        self.outage_grace = outage_grace
        self._sleep = sleep
        self._clock = clock
        self._all_down_since: float | None = None
        self._on_change = on_change or (lambda what, srv: None)
        self._waiters: list[tuple[int, int, asyncio.Future[PooledServer]]] = []
        self._seq = itertools.count()
        self._started = False
        self._starting: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ health
    async def start(self) -> None:
        """Health-check every server; at least one must answer, else :class:`ServerUnavailableError`.

        The memo of the health check lives here: once a check succeeded the pool's own
        failover takes over and ``start`` returns at once; callers arriving while a check
        runs share it (a dead server is asked once, not once per scene). A failed check is
        not remembered beyond the callers that shared it, so a long-lived pool (the
        service) checks again for the next run.
        """
        if self._started:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._check())
        await asyncio.shield(self._starting)

    async def _check(self) -> None:
        results = await asyncio.gather(*(s.client.system_stats() for s in self.servers), return_exceptions=True)
        for srv, res in zip(self.servers, results):
            if isinstance(res, BaseException):
                self._mark_down(srv, res)
        if not any(s.healthy for s in self.servers):
            causes = "; ".join(_cause(s) for s in self.servers)
            raise ServerUnavailableError(f"no ComfyUI server is reachable ({causes})")
        self._started = True

    def _mark_down(self, srv: PooledServer, exc: BaseException) -> None:
        srv.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not srv.healthy:
            return
        srv.healthy = False
        if not any(s.healthy for s in self.servers) and self._all_down_since is None:
            self._all_down_since = self._clock()
        self._on_change("down", srv)
        if srv.probe is None or srv.probe.done():
            srv.probe = asyncio.ensure_future(self._probe(srv))
        # Jobs waiting only for this server must re-check: maybe no server is left.
        self._wake()

    async def _probe(self, srv: PooledServer) -> None:
        while not srv.healthy:
            # While nothing is up, look often: jobs are waiting for the first server back.
            await self._sleep(self.probe_interval if self._all_down_since is None else min(1.0, self.probe_interval))
            try:
                await srv.client.system_stats()
            except Exception as exc:  # noqa: BLE001 - still down
                srv.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._wake()  # fails the waiters once the outage outlasts its grace
                continue
            srv.healthy = True
            self._all_down_since = None
            self._on_change("up", srv)
            self._wake()

    def _outage_over_grace(self) -> bool:
        """Every server is down, and has been for longer than ``outage_grace``."""
        if any(s.healthy for s in self.servers):
            return False
        since = self._all_down_since
        return since is None or self._clock() - since >= self.outage_grace

    # ------------------------------------------------------------------ leasing
    def _pick(self, weight: float) -> PooledServer | None:
        free = [s for s in self.servers if s.healthy and s.leases < s.depth]
        if not free:
            return None
        return min(free, key=_preference)

    def _wake(self) -> None:
        """Hand free slots to waiters in priority order."""
        while self._waiters:
            prio, seq, fut = self._waiters[0]
            if fut.done():
                heapq.heappop(self._waiters)
                continue
            if not any(s.healthy for s in self.servers):
                if not self._outage_over_grace():
                    return  # wait for a server to come back
                heapq.heappop(self._waiters)
                fut.set_exception(ServerUnavailableError(self._none_left()))
                continue
            srv = self._pick(1.0)
            if srv is None:
                return
            heapq.heappop(self._waiters)
            srv.leases += 1  # reserved for this waiter
            fut.set_result(srv)

    def _none_left(self) -> str:
        causes = "; ".join(_cause(s) for s in self.servers)
        waited = f" for {self.outage_grace:g} s" if self._all_down_since is not None and self.outage_grace else ""
        return f"no ComfyUI server is answering{waited} ({causes})"

    @contextlib.asynccontextmanager
    async def lease(self, *, priority: int = PRIORITY_IMAGE, weight: float = 1.0) -> AsyncIterator[PooledServer]:
        """A slot on the least busy healthy server, held for one job."""
        if self._outage_over_grace():
            raise ServerUnavailableError(self._none_left())
        srv = self._pick(weight) if not self._waiters else None
        if srv is not None:
            srv.leases += 1
        else:
            fut: asyncio.Future[PooledServer] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._seq), fut))
            self._wake()
            try:
                srv = await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    fut.result().leases -= 1
                    self._wake()
                raise
        srv.in_flight += weight
        try:
            yield srv
        finally:
            srv.in_flight -= weight
            srv.leases -= 1
            self._wake()

    async def run(
        self,
        job: Callable[[C], Awaitable[T]],
        *,
        priority: int = PRIORITY_IMAGE,
        weight: float = 1.0,
        on_failover: Callable[[PooledServer[C], BaseException], None] | None = None,
    ) -> T:
        """Run ``job(client)`` on a leased server; move it to another server if that one dies.

        A job moves at most twice per server in the pool; after that the server's error is
        raised (retryable: the scene's own retry budget decides). A server that answers its
        health check but keeps failing this job (a broken ``/history``) must not keep the
        job moving, and resubmitting, for ever.
        """
        moves = 0
        while True:
            async with self.lease(priority=priority, weight=weight) as srv:
                try:
                    result = await job(srv.client)
                except Exception as exc:
                    if not is_server_down(exc):
                        raise
                    self._mark_down(srv, exc)
                    moves += 1
                    if self._outage_over_grace() or moves > 2 * len(self.servers):
                        raise
                    if on_failover is not None:
                        on_failover(srv, exc)
                    continue  # another server, or the same one once it is back
                srv.jobs_done += 1
                return result

    def keep_jobs_on_close(self) -> None:
        """From now on, jobs abandoned by cancellation stay on their servers (a service shutting down:
        the next start re-attaches to them through their journal entries) instead of being cancelled."""
        for s in self.servers:
            s.client.keep_abandoned_jobs = True

    def find(self, name: str) -> PooledServer[C] | None:
        """The healthy server whose (redacted) URL is ``name``, if any."""
        return next((s for s in self.servers if s.healthy and s.name == name), None)

    async def aclose(self) -> None:
        """Stop probes and close every client."""
        for s in self.servers:
            if s.probe is not None:
                s.probe.cancel()
                with contextlib.suppress(BaseException):
                    await s.probe
        await asyncio.gather(*(s.client.aclose() for s in self.servers), return_exceptions=True)
