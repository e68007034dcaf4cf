"""What the ``comfyui`` image backend and the ``wan`` motion backend share.

Both run their jobs on the run's :class:`~sceneforge.comfy.pool.pool.ComfyPool` (lent
through :class:`~sceneforge.backend.BackendResources`, never owned), journal each
job before submitting it so a killed run re-attaches instead of rendering twice,
and turn the client's job events into sceneforge events through the ``report``
callable of the call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ..backend import Backend, KeyedRequest, ServerPool
from ..cache import file_digest
from ..errors import ConfigError, JobTimeoutError, ServerUnavailableError, TransientError
from ..events import Reporter
from .client import ComfyClient
from .graphs.workflow import Workflow
from .journal import JobJournal
from .pool.pool import ComfyPool, PooledServer
from .protocol.result import JobResult

if TYPE_CHECKING:
    from typing import Self

    from ..layout import TopicLayout

__all__ = ["ComfyBackend", "WorkflowRequest", "job_events", "upload_name"]

log = logging.getLogger("sceneforge.comfy")

T = TypeVar("T")


class WorkflowRequest(KeyedRequest, Protocol):
    """A request that may name the scene's own workflow (:class:`~sceneforge.images.ImageRequest`,
    :class:`~sceneforge.motion.MotionRequest`)."""

    @property
    def workflow(self) -> str | None: ...


W = TypeVar("W", bound=WorkflowRequest)


def upload_name(image: Path) -> str:
    """``sceneforge_<first 16 hex of sha256>.<ext>``: the same bytes always get the same name on the
    server (identical images are stored once; two topics' images are never mistaken for each other)."""
    ext = Path(image).suffix.lower()
    ext = ext if re.fullmatch(r"\.[a-z0-9]{1,5}", ext) else ".png"
    return f"sceneforge_{file_digest(Path(image))[:16]}{ext}"


def job_events(report: Reporter, server: str) -> Callable[[str, dict[str, Any]], None]:
    """The client's job events as sceneforge events: ``queued``, ``progress``, ``warning``; an endpoint's
    ``waiting`` (no worker has taken the job yet: ``job_waiting``) and, after a wait, ``started``."""
    waited = False

    def on_event(kind: str, data: dict[str, Any]) -> None:
        nonlocal waited
        if kind == "queued":
            report("job_queued", server=server, prompt_id=data.get("prompt_id"))
        elif kind == "waiting":
            waited = True
            report("job_waiting", server=server, prompt_id=data.get("prompt_id"))
        elif kind == "started" and waited:
            waited = False
            report("job_started", server=server, prompt_id=data.get("prompt_id"))
        elif kind == "progress":
            report("job_progress", server=server, prompt_id=data.get("prompt_id"),
                   node=data.get("node"), value=data.get("value"), max=data.get("max"))
        elif kind == "warning":
            report("warning", message=str(data.get("message", "")))

    return on_event


class ComfyBackend(Backend[W]):
    """Base of the backends that run ComfyUI workflows on the shared server pool.

    A subclass names its stage and workflow kind, keeps its workflow in ``workflow`` and
    says which of its options decide the asset (:meth:`key_options`), how to build itself
    again for a scene's own workflow (:meth:`options`) and the graph a request would
    submit (:meth:`check_graph`). The fingerprint, the per-workflow variants, the cache
    key and the sample graph checked against a server are then the same for both.
    """

    #: The stage whose journal entries this backend writes ("image" or "motion").
    stage: ClassVar[str]
    #: The name its fingerprint carries (fixed, whatever name a registry gives the class).
    backend_id: ClassVar[str]
    #: The request field naming a scene's own workflow ("workflow" or "motion_workflow").
    workflow_field: ClassVar[str]
    #: Jobs in flight are limited by the pool (one running and one queued per server), not here.
    max_concurrency = 64

    workflow: Workflow
    seed: int | None

    def __init__(self, pool: ServerPool | None) -> None:
        self._pool_ref = pool
        self._variants: dict[str, Self] = {}

    @property
    def pool(self) -> ComfyPool[ComfyClient]:
        """The shared pool; a backend built without one cannot run jobs."""
        if self._pool_ref is None:
            raise ConfigError(f"the {self.name} backend was built without a ComfyUI server pool")
        if not isinstance(self._pool_ref, ComfyPool):
            raise ConfigError(f"the {self.name} backend needs a ComfyUI pool, got {type(self._pool_ref).__name__}")
        return self._pool_ref

    # ------------------------------------------------------------------ what a subclass says
    def key_options(self) -> dict[str, Any]:
        """The options besides workflow and seed policy that decide the asset (never the server)."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The keyword arguments (besides workflow and pool) that build this backend again."""
        raise NotImplementedError

    def check_graph(self, request: W) -> dict[str, Any]:
        """The graph ``request`` would submit, filled with a placeholder seed and image name."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared from here on
    def fingerprint(self) -> dict[str, Any]:
        """Workflow content, seed policy and :meth:`key_options` (not the server: the same workflow and
        models give the same asset anywhere)."""
        return {
            "backend": self.backend_id,
            "workflow": self.workflow.digest,
            "seed": "random" if self.seed is None else self.seed,
            **self.key_options(),
        }

    def _for(self, request: W) -> Self:
        """This backend, or the one for the scene's own workflow (same options, same pool)."""
        if not request.workflow:
            return self
        if request.workflow not in self._variants:
            workflow = Workflow.load(request.workflow, kind=self.stage)
            build: Callable[..., Self] = type(self)  # a subclass takes (workflow, *, pool, **options)
            self._variants[request.workflow] = build(workflow, pool=self._pool_ref, **self.options())
        return self._variants[request.workflow]

    def cache_key(self, request: W) -> dict[str, Any]:
        """The request's inputs and the options of the workflow it runs (its own, or the run's)."""
        return {"request": request.key_fields(), "backend": self._for(request).fingerprint()}

    def sample_graph(self, request: W) -> tuple[str, dict[str, Any]]:
        """``(workflow label, graph)`` as this request would submit it (to check against a server)."""
        backend = self._for(request)
        field = self.workflow_field if request.workflow else "the run's " + self.workflow_field.replace("_", " ")
        return f"{field} {backend.workflow.source}", backend.check_graph(request)

    async def start(self) -> None:
        """Health-check the pool's servers (memoized by the pool): ServerUnavailableError when none answers."""
        await self.pool.start()

    def forget(self, layout: TopicLayout, scene: int) -> None:
        """Forget the scene's journaled job (recorded, or a fresh roll is wanted)."""
        JobJournal(layout.root, self.stage, scene).clear()

    def journal(self, topic_root: Path, scene: int) -> JobJournal:
        """The journal entry of ``scene``'s job in this backend's stage."""
        return JobJournal(topic_root, self.stage, scene)

    async def resume(
        self, entry: dict[str, Any], report: Reporter, *, timeout: float | None = None
    ) -> tuple[ComfyClient, JobResult] | None:
        """Re-attach to a journaled job: ``(client, result)``, or None to submit afresh.

        Only the server that ran it can have it; when that server is gone or does not
        know the job any more, the caller simply runs the job again.
        """
        srv = self.pool.find(entry["server"])
        if srv is None:
            return None
        try:
            result = await srv.client.resume(
                entry["prompt_id"], entry["client_id"], on_event=job_events(report, srv.name), timeout=timeout
            )
        except (ServerUnavailableError, TransientError) as exc:
            log.info("could not resume job %s on %s: %s", entry["prompt_id"], srv.name, exc)
            return None
        return (srv.client, result) if result is not None else None

    async def run_graph(
        self,
        client: ComfyClient,
        graph: dict[str, Any],
        *,
        journal: JobJournal,
        key: str,
        seed: int,
        report: Reporter,
        timeout: float | None = None,
    ) -> JobResult:
        """Submit ``graph`` on ``client`` (journaled just before the POST) and wait for it."""

        def remember(prompt_id: str, client_id: str) -> None:
            journal.save(key, server=client.server, prompt_id=prompt_id, client_id=client_id, seed=seed)

        try:
            return await client.run(graph, on_event=job_events(report, client.server), on_submit=remember,
                                    timeout=timeout)
        except JobTimeoutError:
            journal.clear()  # the client cancelled it: the retry must submit anew, not re-attach
            raise

    def usage(self, client: object, result: JobResult) -> dict[str, float]:
        """The job's GPU seconds (and, where its member has a ``price_per_second``, their cost) as the
        asset's fields ``gpu_seconds`` / ``gpu_cost``; nothing when the member did not say."""
        if result.gpu_seconds is None:
            return {}
        out = {"gpu_seconds": round(result.gpu_seconds, 3)}
        member = next((s for s in self.pool.servers if s.client is client), None)
        price = member.price_per_second if member is not None else None
        if price is not None:
            out["gpu_cost"] = round(result.gpu_seconds * price, 6)
        return out

    async def on_pool(
        self, job: Callable[[ComfyClient], Awaitable[T]], *, scene: int, priority: int, report: Reporter,
        weight: float = 1.0,
    ) -> T:
        """Run ``job(client)`` on a leased server; tell the user when it moves off a dead one."""

        def moved(srv: PooledServer[ComfyClient], exc: BaseException) -> None:
            report("warning", message=f"{srv.name} stopped answering ({exc}); moving scene {scene} to another server")

        return await self.pool.run(job, priority=priority, weight=weight, on_failover=moved)
