"""The job queue: one job per topic at a time, several topics at once, state kept on disk.

A bounded FIFO of topics waits for ``serve_concurrency`` workers. A worker marks
the topic ``running``, runs its job (:func:`.runner.run_job`) as a task of its own
and settles the outcome: ``done``, ``failed`` (with the error's text), ``cancelled``
(:meth:`JobQueue.cancel`) or ``interrupted`` (the service stopped). Every topic of
the service shares the one :class:`Engine`, so every topic's ComfyUI jobs go to
the same server pool and a second topic keeps the GPUs fed while the first waits
on narration or downloads.

Every status change and every engine event is given the topic's next event id,
appended to its events file and broadcast (:mod:`.events`); ``status.json`` is
rewritten on each status change. A starting service reads every topic under
``--out``, marks the ones it finds queued or running ``interrupted`` (the service
before it stopped without saying so) and queues every interrupted one again: the
ComfyUI job journal then re-attaches to their jobs instead of rendering them twice.

Every status change goes through one guarded transition (:meth:`JobQueue._set_status`,
its table :data:`NEXT`): a change the table does not allow (a second cancel of a job
already cancelled, whatever the concurrency) does nothing, so each transition has
exactly one ``status`` event and at most one webhook, whose ``webhook-id`` is that
event's. A restarted service resumes the jobs that were running first, then the
queued ones in the order they were queued; all of them, whatever ``serve_max_queued``
(which bounds new submissions only).

Cancelling a running job cancels its task: the ComfyUI client deletes the job from
the server's queue and interrupts it. Stopping the service also cancels the tasks,
but first tells the pool's clients to keep their jobs (journaled, they finish on
the GPU and the next start re-attaches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from .. import Event, EventKind, Settings, error_text
from ..pipeline import Engine
from .events import EventHub
from .files import relative_paths, relative_value
from .models import ACTIVE, RESUMABLE, JobSpec, JobStatus
from .options import webhook_url
from .problems import QueueFull, TopicBusy, UnknownTopic
from .runner import run_job, undo_reroll
from .scene_states import SceneStates
from .store import TopicRecord, TopicStore
from .webhooks import WebhookSender

__all__ = ["JobQueue"]

#: Events whose data carries error texts (which may name files).
_MESSAGE_KINDS = frozenset({"scene_failed", "scene_retried", "warning"})

log = logging.getLogger("sceneforge.service")

_ENDED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED)
#: The status changes there are: from each status, where a topic may go next.
NEXT: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.INTERRUPTED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(_ENDED),
    **{ended: frozenset({JobStatus.QUEUED}) for ended in _ENDED},
}
NEXT[JobStatus.INTERRUPTED] |= {JobStatus.CANCELLED}
_WEBHOOK_STATUSES = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})
_FINISHED_KINDS = frozenset({"scene_done", "scene_cached", "scene_failed"})


def _resume_order(record: TopicRecord) -> tuple[int, str, str]:
    """Jobs that were running first, then the queued ones in the order they were queued."""
    was_running = record.status is JobStatus.RUNNING or record.interrupted_from == "running"
    return (0 if was_running else 1, record.queued_at or record.updated_at, record.slug)


class JobQueue:
    """Topics, their jobs and their events (use :meth:`start` and :meth:`shutdown`)."""

    def __init__(self, *, base: Settings, engine: Engine, store: TopicStore, hub: EventHub,
                 webhooks: WebhookSender, clock: Callable[[], float] | None = None) -> None:
        self.base = base
        self.engine = engine
        self.store = store
        self.hub = hub
        self.webhooks = webhooks
        self.clock = clock or store.clock
        self.records: dict[str, TopicRecord] = {}
        self.closing = False
        self._queue: deque[tuple[str, bool]] = deque()
        self._ready = asyncio.Event()
        self._claimed: set[str] = set()
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}  # task, settled
        self._finished: dict[str, set[tuple[str, int]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._states: dict[str, SceneStates] = {}

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        """Learn every topic under ``--out``, queue the unfinished ones again, start the workers."""
        for record in await asyncio.to_thread(lambda: list(self.store.scan())):
            self.records[record.slug] = record
        for record in sorted((r for r in self.records.values() if r.status in RESUMABLE), key=_resume_order):
            if record.status is not JobStatus.INTERRUPTED:  # the service before stopped mid-job, unannounced
                self._set_status(record, JobStatus.INTERRUPTED, was=record.status.value)
            self._enqueue(record, record.job, resumed=True)  # every one: none is left interrupted
        self._workers = [asyncio.ensure_future(self._worker()) for _ in range(self.base.serve_concurrency)]

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop: queued and running jobs become ``interrupted``; ComfyUI jobs stay on their servers."""
        self.closing = True
        if self.engine.resources.pool is not None:
            self.engine.resources.pool.keep_jobs_on_close()
        while self._queue:
            slug, _ = self._queue.popleft()
            if slug in self.records:
                self._set_status(self.records[slug], JobStatus.INTERRUPTED, was="queued")
        running = list(self._running.values())
        for task, _ in running:
            task.cancel()
        settled = [asyncio.ensure_future(done.wait()) for _, done in running]
        if settled:
            await asyncio.wait(settled, timeout=timeout)  # the workers write "interrupted"
            for waiter in settled:
                waiter.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self.webhooks.aclose()

    # ------------------------------------------------------------------ lookups
    def get(self, slug: str) -> TopicRecord:
        """The topic's record (one made by the command line meanwhile is adopted); AssetMissingError if none."""
        record = self.records.get(slug)
        if record is None and self.store.exists(slug):
            record = self.store.load(slug)
            if record is not None:
                self.records[slug] = record
        if record is None:
            raise UnknownTopic(f"no topic {slug!r}")
        return record

    def all(self) -> list[TopicRecord]:
        """Every topic, the most recently changed first (folders made meanwhile included)."""
        present = set(self.store.slugs())
        for record in self.store.load_all(sorted(present - set(self.records))):  # made by the command line meanwhile
            self.records[record.slug] = record
        for slug in [s for s in self.records if s not in present and s not in self._claimed]:
            del self.records[slug]  # its folder was removed behind the service's back
        return sorted(self.records.values(), key=lambda r: r.updated_at, reverse=True)

    def busy(self, slug: str) -> bool:
        """Whether a request holds the topic or it has a job waiting or running (a status that says so
        with no such job, after an unexpected error, holds nothing: it can be cancelled and deleted)."""
        return slug in self._claimed or slug in self._running or any(s == slug for s, _ in self._queue)

    # ------------------------------------------------------------------ claiming and queueing
    @contextlib.asynccontextmanager
    async def claim(self, slug: str, *, queue_room: bool = True) -> AsyncIterator[None]:
        """Hold a topic while a request changes it: 409 for a topic with a job, 429 when the queue is full."""
        if self.closing:
            raise QueueFull("the service is stopping")
        if self.busy(slug):
            record = self.records.get(slug)
            what = record.status.value if record is not None and record.status in ACTIVE else "being changed"
            raise TopicBusy(f"topic {slug!r} is {what}; wait for its job to end or cancel it")
        if queue_room and len(self._queue) >= self.base.serve_max_queued:
            raise QueueFull(f"the queue is full ({len(self._queue)} jobs waiting); try again later")
        self._claimed.add(slug)
        try:
            yield
        finally:
            self._claimed.discard(slug)

    def enqueue(self, record: TopicRecord, job: JobSpec) -> None:
        """Queue a job for a claimed topic."""
        self.records[record.slug] = record
        self._enqueue(record, job, resumed=False)

    def _enqueue(self, record: TopicRecord, job: JobSpec, *, resumed: bool) -> None:
        record.job = job
        if not resumed or not record.queued_at:
            record.queued_at = self.store.now()
        if not self._set_status(record, JobStatus.QUEUED, keep_was=resumed):
            raise TopicBusy(f"topic {record.slug!r} is {record.status.value}; wait for its job to end")
        self._queue.append((record.slug, resumed))
        self._ready.set()

    def forget(self, record: TopicRecord) -> None:
        """The topic was deleted: its listeners hear so (not kept: the folder is gone), its record goes."""
        record.last_event_id += 1
        self.hub.publish(record.slug, {"id": record.last_event_id, "slug": record.slug, "kind": "deleted",
                                       "topic": record.topic, "data": {}, "time": self.clock()})
        self.store.events.remember(record.slug, record.last_event_id)  # a new topic of that name goes on from here
        self.records.pop(record.slug, None)
        self._states.pop(record.slug, None)
        self.hub.close_topic(record.slug)

    # ------------------------------------------------------------------ events and status
    def scene_states(self, record: TopicRecord) -> SceneStates:
        """Each scene's state (as the events so far made it), sized to the topic's scenes now."""
        count = record.scene_count
        states = self._states.get(record.slug)
        if states is None:
            states = SceneStates.from_json(record.scene_states, count, record.status in ACTIVE)
            self._states[record.slug] = states
        elif states.count != count:
            states.resize(count, record.status in ACTIVE)
        return states

    def _event(self, record: TopicRecord, event: dict[str, Any]) -> None:
        record.last_event_id += 1
        event = {"id": record.last_event_id, "slug": record.slug, **event}
        self.scene_states(record).apply(event)
        try:
            self.store.append_event(record.slug, event)
        except OSError as exc:  # a full disk loses history, never the live stream or the job
            log.warning("cannot keep an event of %s: %s", record.slug, exc)
        self.hub.publish(record.slug, event)

    def note(self, record: TopicRecord, kind: EventKind, data: dict[str, Any], *, scene: int | None = None,
             stage: str | None = None) -> None:
        """An event of the service itself (``status``, ``scene_edited`` ...)."""
        event: dict[str, Any] = {"kind": kind, "topic": record.topic}
        if stage is not None:
            event["stage"] = stage
        if scene is not None:
            event["scene"] = scene
        self._event(record, {**event, "data": data, "time": self.clock()})

    def _engine_sink(self, record: TopicRecord) -> Callable[[Event], None]:
        finished = self._finished.setdefault(record.slug, set())

        def sink(event: Event) -> None:
            if event.kind == "stage_started":
                record.progress["total"] += int(event.data.get("total") or 0)
            elif event.kind in _FINISHED_KINDS and event.stage and event.scene is not None:
                if (event.stage, event.scene) not in finished:
                    finished.add((event.stage, event.scene))
                    record.progress["done"] += 1
            raw = event.to_dict()
            raw.setdefault("data", {})  # every event has data, even empty (to_dict drops an empty one)
            if event.kind in _MESSAGE_KINDS:  # error texts name files: relative to the output folder
                raw["data"] = relative_value(raw["data"], self.store.out_dir)
            raw["time"] = raw.pop("time")
            self._event(record, raw)

        return sink

    def _set_status(self, record: TopicRecord, status: JobStatus, error: str | None = None, *,
                    was: str | None = None, keep_was: bool = False) -> bool:
        """The one way a topic's status changes: False (and nothing done) for a change :data:`NEXT` does not
        allow; else saved, one ``status`` event, and for a job's end its webhook (``webhook-id``: the event's)."""
        if status not in NEXT[record.status]:
            return False
        record.status = status
        record.error = error
        if not keep_was:
            record.interrupted_from = was if status is JobStatus.INTERRUPTED else None
        record.updated_at = self.store.now()
        record.created_at = record.created_at or record.updated_at
        self.note(record, "status", {"status": status.value, "error": error, "job": record.job.to_json(),
                                     "progress": dict(record.progress)})
        record.scene_states = self.scene_states(record).to_json()  # as this status leaves them
        try:
            self.store.save(record)
        except OSError as exc:
            log.warning("cannot save the status of %s: %s", record.slug, exc)
        url = webhook_url(record.options)
        if url is not None and status in _WEBHOOK_STATUSES:
            self.webhooks.send(url, {"slug": record.slug, "status": status.value, "error": error},
                               msg_id=f"{record.slug}.{record.last_event_id}")
        return True

    # ------------------------------------------------------------------ workers
    async def _next(self) -> tuple[str, bool]:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def _worker(self) -> None:
        while True:
            slug, resumed = await self._next()
            record = self.records.get(slug)
            if record is None or record.status is not JobStatus.QUEUED:
                continue
            try:
                await self._work(record, resumed)
            except Exception as exc:  # noqa: BLE001 - a worker never dies: the topic fails, the queue goes on
                log.exception("topic %s: the job could not run", slug)
                self._set_status(record, JobStatus.FAILED, f"the service could not run the job: {error_text(exc)}")

    async def _work(self, record: TopicRecord, resumed: bool) -> None:
        slug = record.slug
        record.progress = {"done": 0, "total": 0}
        self._finished[slug] = set()
        if self._set_status(record, JobStatus.RUNNING):
            task = asyncio.ensure_future(self._run(record, resumed))
            settled = asyncio.Event()
            self._running[slug] = (task, settled)
            try:
                await asyncio.wait({task})
                if (task.cancelled() or task.exception() is not None) and not self.closing:
                    await self._undo(record)  # (interrupted: a resumed re-roll carries on instead)
                self._settle(record, task)
            finally:
                self._running.pop(slug, None)
                self._finished.pop(slug, None)
                settled.set()

    async def _run(self, record: TopicRecord, resumed: bool) -> None:
        await asyncio.to_thread(self.store.compact_events, record.slug)
        def note(kind: EventKind, data: dict[str, Any]) -> None:
            self.note(record, kind, data)

        await run_job(self.engine, self.base, self.store.topic(record.slug), record.options, record.job,
                      emit=self._engine_sink(record), note=note, resumed=resumed)

    async def _undo(self, record: TopicRecord) -> None:
        """A cancelled or failed re-roll leaves the scene as it was before it (its take, its seed pin)."""
        try:
            if await asyncio.to_thread(undo_reroll, self.store.topic(record.slug), record.job):
                self.note(record, "reroll_undone", {"take": record.job.take_before}, scene=record.job.scene,
                          stage=record.job.stage)
        except Exception as exc:  # noqa: BLE001 - the job's own outcome is what the topic reports
            log.warning("topic %s: could not put back scene %s's %s take: %s", record.slug, record.job.scene,
                        record.job.stage, error_text(exc))

    def _settle(self, record: TopicRecord, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            status, error = (JobStatus.INTERRUPTED if self.closing else JobStatus.CANCELLED), None
        elif task.exception() is not None:
            error = relative_paths(error_text(task.exception()), self.store.out_dir)  # type: ignore[arg-type]
            status = JobStatus.FAILED
        else:
            status, error = JobStatus.DONE, None
        self._set_status(record, status, error, was="running")

    # ------------------------------------------------------------------ cancel
    async def cancel(self, slug: str, timeout: float = 30.0) -> TopicRecord:
        """Cancel the topic's queued or running job; the running one's ComfyUI jobs are deleted on the server."""
        record = self.get(slug)
        running = self._running.get(slug)
        if running is None:
            # Queued (or left saying queued or running by an unexpected error): cancelled at once, before any
            # await, so of several cancels at once exactly one changes the status.
            if record.status not in ACTIVE or not self._set_status(record, JobStatus.CANCELLED):
                raise TopicBusy(f"topic {slug!r} is {record.status.value}: there is no job to cancel")
            self._queue = deque(item for item in self._queue if item[0] != slug)
            await self._undo(record)  # a re-roll interrupted by a restart may have begun
            return record
        task, settled = running
        task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), timeout)  # the worker settles: "cancelled"
        return record
