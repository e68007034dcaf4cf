"""A fake RunPod queue-based endpoint whose workers behave like worker-comfyui, on 127.0.0.1.

It follows two real things, read for this fake:

* RunPod's serverless endpoint API (docs.runpod.io, ``serverless/endpoints/operation-reference``,
  ``send-requests`` and ``job-states``, as published in 2026): ``POST {base}/run`` answers
  ``{"id", "status": "IN_QUEUE"}``; ``GET``/``POST {base}/status/{id}`` answers ``{"id", "status",
  "delayTime", "executionTime", "workerId", "output"}`` (``"error"`` instead of a result when the
  handler failed), ``delayTime``/``executionTime`` in milliseconds; statuses ``IN_QUEUE``,
  ``IN_PROGRESS``, ``COMPLETED``, ``FAILED``, ``CANCELLED``, ``TIMED_OUT``; ``POST
  {base}/cancel/{id}``; ``GET {base}/health`` answers ``{"jobs": {"completed", "failed",
  "inProgress", "inQueue", "retried"}, "workers": {"idle", "running", "initializing"}}``; ``POST
  {base}/purge-queue`` answers ``{"removed", "status": "completed"}``. A result of ``/run`` is kept
  30 minutes after completion; after that (or for an id it never had) ``/status`` answers 404.
  ``Authorization: Bearer KEY`` (401 without it); a rate limit answers 429 with ``Retry-After``.
* runpod-workers/worker-comfyui 5.8.5 (commit d2a55723, ``handler.py`` and README; the handler is in
  ``runpod_worker.py``): ``validate_input``
  (``workflow`` required, ``images`` a list of ``{name, image}``), ``upload_images`` (base64, a
  ``data:...;base64,`` prefix allowed, to ComfyUI's ``/upload/image``), ``queue_workflow``
  (``POST /prompt``), the wait for the end, ``get_history``, then for every output node only its
  ``images`` key: ``temp`` files skipped, each file fetched from ``/view`` and returned as
  ``{"filename", "type": "base64", "data"}`` (or ``"s3_url"`` when S3 is configured: here
  ``s3=True`` serves them from this fake under ``/s3/``); any other output key (VideoHelperSuite's
  ``gifs``) is only warned about on the worker's log. The handler returns ``{"images": [...]}``
  (plus ``"errors"`` for warnings) or ``{"error", "details"}``, which RunPod reports as ``FAILED``.
  The real handler waits on ComfyUI's websocket; this one polls ``/history`` (the same end, seen
  by the same worker).

Each worker runs its own fake ComfyUI (``tests/fakes/comfy_server.py``) made by ``comfy_factory``,
started on the worker's first job after ``cold_start`` seconds. :meth:`hold` keeps every job
``IN_QUEUE`` until :meth:`release`; ``clock`` (injectable) decides retention; :meth:`expire`
drops finished results at once; ``down`` makes every call answer 503. Records: ``submitted``, ``status_calls`` (job id -> monotonic
times), ``cancels``, ``requests`` (method, path, status).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .comfy_server import FakeComfyServer
from .runpod_worker import default_comfy, handle

__all__ = ["FakeRunPod", "FakeRunPodJob", "RETENTION"]

#: How long RunPod keeps the result of a ``/run`` job after it finished (30 minutes).
RETENTION = 30 * 60.0
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


@dataclass
class FakeRunPodJob:
    id: str
    input: dict[str, Any]
    submitted: float
    status: str = "IN_QUEUE"
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    task: asyncio.Task[Any] | None = field(default=None, repr=False)

    def answer(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            out["delayTime"] = int(round((self.started - self.submitted) * 1000))
            out["workerId"] = self.worker
        if self.finished is not None and self.started is not None:
            out["executionTime"] = int(round((self.finished - self.started) * 1000))
        if self.output is not None:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class _Worker:
    id: str
    comfy: FakeComfyServer | None = None
    busy: bool = False


class FakeRunPod:
    """The fake endpoint: ``base_url`` is ``http://127.0.0.1:PORT/v2/ENDPOINT`` (use ``member_url``)."""

    def __init__(
        self, *, api_key: str = "rp-test-key", endpoint_id: str = "ep1", workers: int = 2,
        comfy_factory: Callable[[], FakeComfyServer] | None = None, cold_start: float = 0.0,
        s3: bool = False, retention: float = RETENTION, clock: Callable[[], float] = time.monotonic,
        execution_timeout: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.endpoint_id = endpoint_id
        self.comfy_factory = comfy_factory or default_comfy
        self.cold_start = cold_start
        self.s3 = s3
        self.retention = retention
        self.clock = clock
        self.execution_timeout = execution_timeout
        self.workers = [_Worker(f"worker-{i}") for i in range(workers)]
        self.jobs: dict[str, FakeRunPodJob] = {}
        self.submitted: list[dict[str, Any]] = []
        self.status_calls: dict[str, list[float]] = {}
        self.cancels: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.s3_files: dict[str, bytes] = {}
        self.s3_requests: list[dict[str, str]] = []  # headers of each /s3 GET (no key may reach storage)
        self.down = False  # set: every call answers 503 (an outage of the control plane)
        self.rate_limits: dict[str, list[float]] = {}  # operation -> Retry-After of each 429 still to send
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/{self.endpoint_id}"

    @property
    def member_url(self) -> str:
        """The pool member URL (``runpod+http://...``) of this endpoint."""
        return "runpod+" + self.base_url

    async def __aenter__(self) -> FakeRunPod:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        base = f"/v2/{self.endpoint_id}"
        app.router.add_post(f"{base}/run", self._run)
        app.router.add_route("*", f"{base}/status/{{id}}", self._status)
        app.router.add_post(f"{base}/cancel/{{id}}", self._cancel)
        app.router.add_get(f"{base}/health", self._health)
        app.router.add_post(f"{base}/purge-queue", self._purge)
        app.router.add_get("/s3/{key:.+}", self._s3)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tasks = [asyncio.ensure_future(self._work(w)) for w in self.workers]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self.workers:
            if w.comfy is not None:
                await w.comfy.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- test controls ----------------------------------------------------------------
    def hold(self) -> None:
        """Keep new work ``IN_QUEUE`` (no worker takes a job) until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def rate_limit(self, operation: str, *retry_after: float) -> None:
        """Answer the next requests of ``operation`` (``run``, ``status``, ``cancel``, ``health``) 429."""
        self.rate_limits.setdefault(operation, []).extend(retry_after)

    def expire(self) -> None:
        """Forget every finished job now (as after the retention period)."""
        for jid in [j.id for j in self.jobs.values() if j.status in FINAL]:
            del self.jobs[jid]

    # --- HTTP -------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/s3/"):
            return await handler(request)
        op = path.split("/")[3] if path.count("/") >= 3 else ""
        if self.down:  # the control plane in an outage: every call answers 503
            self.requests.append((request.method, path, 503))
            return web.json_response({"error": "service unavailable"}, status=503)
        if request.headers.get("Authorization", "") not in (f"Bearer {self.api_key}", self.api_key):
            self.requests.append((request.method, path, 401))
            return web.json_response({"error": "Unauthorized"}, status=401)
        pending = self.rate_limits.get(op)
        if pending:
            wait = pending.pop(0)
            self.requests.append((request.method, path, 429))
            return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": f"{wait:g}"})
        self._expire_old()
        resp = await handler(request)
        self.requests.append((request.method, path, resp.status))
        return resp

    def _expire_old(self) -> None:
        now = self.clock()
        for jid in [j.id for j in self.jobs.values() if j.finished is not None and now - j.finished > self.retention]:
            del self.jobs[jid]

    async def _run(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return web.json_response({"error": "the request needs an input object"}, status=400)
        jid = f"{uuid.uuid4()}-u{next(self._ids)}"
        self.jobs[jid] = FakeRunPodJob(jid, body["input"], self.clock())
        self.submitted.append(body["input"])
        self._queue.put_nowait(jid)
        return web.json_response({"id": jid, "status": "IN_QUEUE"})

    async def _status(self, request: web.Request) -> web.Response:
        jid = request.match_info["id"]
        self.status_calls.setdefault(jid, []).append(time.monotonic())
        job = self.jobs.get(jid)
        if job is None:
            return web.json_response({"error": "request does not exist"}, status=404)
        return web.json_response(job.answer())

    async def _cancel(self, request: web.Request) -> web.Response:
        jid = request.match_info["id"]
        self.cancels.append(jid)
        job = self.jobs.get(jid)
        if job is None:
            return web.json_response({"error": "request does not exist"}, status=404)
        if job.status not in FINAL:
            job.status, job.finished = "CANCELLED", self.clock()
            if job.task is not None:
                job.task.cancel()
        return web.json_response({"id": jid, "status": job.status})

    async def _health(self, request: web.Request) -> web.Response:
        counts = {s: sum(1 for j in self.jobs.values() if j.status == s) for s in
                  ("COMPLETED", "FAILED", "IN_PROGRESS", "IN_QUEUE")}
        return web.json_response({
            "jobs": {"completed": counts["COMPLETED"], "failed": counts["FAILED"],
                     "inProgress": counts["IN_PROGRESS"], "inQueue": counts["IN_QUEUE"], "retried": 0},
            "workers": {"idle": sum(1 for w in self.workers if w.comfy is not None and not w.busy),
                        "running": sum(1 for w in self.workers if w.busy),
                        "initializing": 0},
        })

    async def _purge(self, request: web.Request) -> web.Response:
        removed = 0
        for job in self.jobs.values():
            if job.status == "IN_QUEUE":
                job.status, job.finished, removed = "CANCELLED", self.clock(), removed + 1
        return web.json_response({"removed": removed, "status": "completed"})

    async def _s3(self, request: web.Request) -> web.Response:
        self.s3_requests.append(dict(request.headers))
        data = self.s3_files.get(request.match_info["key"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    # --- workers ----------------------------------------------------------------------
    async def _work(self, worker: _Worker) -> None:
        while True:
            await self._open.wait()
            jid = await self._queue.get()
            job = self.jobs.get(jid)
            if job is None or job.status != "IN_QUEUE":
                continue
            if not self._open.is_set():  # held while this worker waited: back to the queue
                self._queue.put_nowait(jid)
                continue
            worker.busy = True
            try:
                if worker.comfy is None:
                    await asyncio.sleep(self.cold_start)
                    worker.comfy = await self.comfy_factory().start()
                await self._execute(worker, job)
            finally:
                worker.busy = False

    async def _execute(self, worker: _Worker, job: FakeRunPodJob) -> None:
        if job.status != "IN_QUEUE":
            return
        job.status, job.started, job.worker = "IN_PROGRESS", self.clock(), worker.id
        assert worker.comfy is not None
        job.task = asyncio.ensure_future(handle(worker.comfy, job.input, job.id, self._s3_put if self.s3 else None))
        try:
            output = await asyncio.wait_for(asyncio.shield(job.task), self.execution_timeout)
        except TimeoutError:
            job.task.cancel()
            job.status, job.finished = "TIMED_OUT", self.clock()
            return
        except asyncio.CancelledError:
            if job.status == "CANCELLED":
                return
            raise
        job.finished = self.clock()
        if isinstance(output, dict) and "error" in output:
            job.status, job.error = "FAILED", str(output.pop("error"))
            job.output = output or None
        else:
            job.status, job.output = "COMPLETED", output

    def _s3_put(self, job_id: str, filename: str, data: bytes) -> str:
        key = f"{job_id}/{filename}"
        self.s3_files[key] = data
        return f"http://127.0.0.1:{self.port}/s3/{key}"
