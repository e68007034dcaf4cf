"""A RunPod serverless endpoint running worker-comfyui, as a member of the pool.

The protocol (RunPod's queue-based endpoint API, worker-comfyui 5.x's input and output):

* ``POST {base}/run`` with ``{"input": {"workflow": <API graph>, "images": [{"name", "image"}]}}``
  (every ``LoadImage`` input the graph names travels in ``images``, base64) answers ``{"id"}``;
* ``GET {base}/status/{id}``: ``IN_QUEUE`` -> ``IN_PROGRESS`` -> ``COMPLETED`` / ``FAILED`` /
  ``CANCELLED`` / ``TIMED_OUT``, with ``delayTime`` (queue) and ``executionTime`` (work) in ms and,
  once completed, ``output: {"images": [{"filename", "type": "base64" | "s3_url", "data"}], "errors"}``;
  RunPod keeps a result 30 minutes after completion, then answers 404;
* ``POST {base}/cancel/{id}``, ``GET {base}/health`` (workers idle and running, jobs queued);
* ``Authorization: Bearer KEY``; ``429`` answers carry ``Retry-After``.

Status is polled, adaptively and never more than once a second per job (:mod:`.forecast`):
``/stream`` gives nothing for a ComfyUI job (its handler yields once, at the end) and
``/runsync`` holds a connection per job for at most 90 s, shorter than a Wan clip's queue
plus work. Time waiting ``IN_QUEUE`` (cold starts) counts against ``queue_timeout``
(``comfy_queue_timeout``), not against the job's own ``timeout``, which starts when a worker
takes the job. Both are measured with the injected ``clock``; every wait is the injected ``sleep``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import (
    ConfigError,
    GenerationError,
    JobInterruptedError,
    JobTimeoutError,
    PermanentError,
    ServerUnavailableError,
    TransientError,
    WorkflowError,
)
from ..protocol.driver import emit
from ..protocol.result import JobResult, dict_of
from ..protocol.watch import OnEvent
from ..transport.http import MiB
from .forecast import RECHECK, Forecast, next_poll
from .member import EndpointMember, ms_to_seconds, output_refs

__all__ = ["RunPodClient"]

#: The largest ``/run`` request RunPod takes (10 MB; ``/runsync`` 20 MB).
MAX_RUN_REQUEST = 10 * MiB
#: Consecutive failed status polls after which the endpoint counts as down (the pool's failover signal).
UNREACHABLE_AFTER = 5


def graph_kind(graph: Mapping[str, Any]) -> str:
    """What tells jobs of one workflow from another's (an image from a clip) for their expected times."""
    return "|".join(sorted({str(n.get("class_type")) for n in graph.values() if isinstance(n, dict)}))


class RunPodClient(EndpointMember):
    """One RunPod endpoint (``base`` is ``https://api.runpod.ai/v2/ENDPOINT_ID`` or a compatible control plane)."""

    kind = "runpod"

    default_concurrency = 4
    auth_hint = "; check RUNPOD_API_KEY"

    def __init__(self, base: str, *, server: str, api_key: str, **options: Any) -> None:
        """``options``: those of :class:`EndpointMember` (timeouts, limits, session, clock ...)."""
        if not api_key:
            raise ConfigError(f"{server}: a RunPod endpoint needs an API key (set RUNPOD_API_KEY)")
        super().__init__(base, server=server, headers={"Authorization": f"Bearer {api_key}"}, **options)
        self.max_request_bytes = MAX_RUN_REQUEST
        self.forecast = Forecast()  # what this client expects of the endpoint: when to ask about each job
        self._counting: asyncio.Task[None] | None = None  # a /health asked for the forecast's count of workers
        self._closed = False

    # --- plain calls ----------------------------------------------------------------
    async def _json(self, method: str, path: str, what: str, *, body: Any = None, data: bytes | None = None,
                    timeout: float | None = None) -> tuple[int, Any]:
        status, answer = await super()._json(method, path, what, body=body, data=data, timeout=timeout)
        if status >= 500 or status == 408:
            raise TransientError(f"{self.server}: {what} failed with HTTP {status}")
        return status, answer

    async def health(self) -> dict[str, Any]:
        """``GET /health``: ``{"jobs": {...}, "workers": {...}}``."""
        status, answer = await self._probe(self._json("GET", "health", "check its health"))
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("workers"), dict):
            raise ServerUnavailableError(f"{self.server} does not answer like a RunPod endpoint (/health, HTTP {status})")
        workers = answer["workers"]
        counts = [workers.get(k) for k in ("idle", "running")]
        if all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            self.forecast.ready(sum(c for c in counts if isinstance(c, int)), self._clock())
        return answer

    async def _count_workers(self) -> None:
        with contextlib.suppress(Exception):  # a forecast without it is only less sharp
            await self.health()

    async def aclose(self) -> None:
        self._closed = True  # jobs still followed start no new /health
        if self._counting is not None:
            self._counting.cancel()
            with contextlib.suppress(BaseException):
                await self._counting
        await super().aclose()

    async def system_stats(self) -> dict[str, Any]:
        """The pool's health check: the endpoint's ``/health``."""
        return {"endpoint": await self.health()}

    async def cancel(self, job_id: str) -> None:
        """``POST /cancel/{id}`` (a job already finished or forgotten is left as it is)."""
        await self._json("POST", f"cancel/{job_id}", "cancel a job")

    async def status(self, job_id: str) -> dict[str, Any] | None:
        """The job's status answer, or ``None`` when the endpoint does not have it (any more)."""
        code, answer = await self._json("GET", f"status/{job_id}", "read a job's status")
        if code == 404:
            return None
        if code != 200 or not isinstance(answer, dict):
            raise TransientError(f"{self.server}: reading the status of job {job_id} failed with HTTP {code}")
        return answer

    # --- jobs -----------------------------------------------------------------------
    def _request(self, graph: Mapping[str, Any]) -> dict[str, Any]:
        images = [{"name": n, "image": base64.b64encode(b).decode("ascii")} for n, b in self.inline_images(graph)]
        job: dict[str, Any] = {"workflow": dict(graph)}
        if images:
            job["images"] = images
        return {"input": job}

    async def run(self, graph: Mapping[str, Any], *, on_event: OnEvent | None = None,
                  on_submit: Callable[[str, str], object] | None = None, timeout: float | None = None) -> JobResult:
        """Submit ``graph`` with its inputs, journal the job id, follow it to its end (see the module doc)."""
        request = json.dumps(self._request(graph), separators=(",", ":")).encode()  # once: up to 10 MB
        size = len(request)
        if size > self.max_request_bytes:
            raise PermanentError(f"{self.server}: the job with its input images is {size / MiB:.1f} MB, over the "
                                 f"{self.max_request_bytes / MiB:g} MB RunPod accepts for /run; use smaller images")
        code, answer = await self._json("POST", "run", "submit the workflow", data=request)
        job_id = str(dict_of(answer).get("id") or "") if code == 200 else ""
        if not job_id:
            raise TransientError(f"{self.server}: the workflow was not accepted (HTTP {code}: {str(answer)[:200]})")
        self._queued(job_id, on_event, on_submit)
        # Its delayTime counts from the endpoint's receipt: the time now is a little after that, so
        # forecasts from it err late (a poll a little late), never early (a poll wasted, the next a second on).
        self.forecast.submitted(job_id, graph_kind(graph), self._clock())
        return await self._follow_owned(job_id, on_event, timeout, first=None)

    async def resume(self, prompt_id: str, client_id: str, *, on_event: OnEvent | None = None,
                     timeout: float | None = None) -> JobResult | None:
        """Re-attach to a journaled job: its result while the endpoint keeps it, ``None`` when it no longer
        has it (expired, never arrived) or it failed (the caller submits it again)."""
        first = await self.status(prompt_id)
        if first is None or first.get("status") in ("FAILED", "CANCELLED", "TIMED_OUT"):
            return None
        emit(on_event, prompt_id, "resumed", {"server": self.server})
        self.forecast.submitted(prompt_id, "", self._clock())  # its workflow unknown: the longest known
        return await self._follow_owned(prompt_id, on_event, timeout, first=first)

    async def _follow_owned(self, job_id: str, on_event: OnEvent | None, timeout: float | None,
                            first: dict[str, Any] | None) -> JobResult:
        try:
            async with self._cancel_if_abandoned(job_id, on_event):
                result = await self._follow(job_id, on_event, timeout or self.timeout, first)
        finally:
            self.forecast.finished(job_id, queue_s=None, work_s=None)  # given up (a finished job is gone already)
        return result

    async def _next_status(self, job_id: str, submitted: float, last: float | None, running: bool) -> None:
        """Sleep until the job's next ``/status`` is due (see :mod:`.forecast`); a queued job's forecast is
        worked out again every :data:`RECHECK` s while the other jobs in flight may change it."""
        fc = self.forecast
        while True:
            now = self._clock()
            if fc.stale(now) and not self._closed and (self._counting is None or self._counting.done()):
                fc.asked(now)  # answered or not, asked again only when stale again: never a loop of /health
                self._counting = asyncio.ensure_future(self._count_workers())
            at = next_poll(now=now, submitted=submitted, last=last, end=fc.end(job_id, now),
                           work=fc.work(fc.kind(job_id)), running=running, behind=fc.behind(job_id, now))
            if at <= now:
                return
            if not fc.revisable(job_id) or at - now <= RECHECK:
                await self._sleep(at - now)
                return
            await self._sleep(RECHECK)

    async def _follow(self, job_id: str, on_event: OnEvent | None, limit: float,
                      answer: dict[str, Any] | None) -> JobResult:
        submitted, started, failures, waiting = self._clock(), None, 0, False
        resumed = answer is not None  # its first answer just read: the next /status a second on at the soonest
        last = submitted if resumed else None
        while True:
            if answer is None:
                await self._next_status(job_id, submitted, last, started is not None)
                try:
                    answer = await self.status(job_id)
                except (TransientError, ServerUnavailableError) as exc:
                    last = self._clock()  # the gap counts from the answer: never two requests within a second
                    failures += 1
                    if failures >= UNREACHABLE_AFTER:  # the pool moves the job: try not to leave a twin running
                        await self.cancel_quietly(job_id, on_event=on_event)
                        raise ServerUnavailableError(f"{self.server} stopped answering: {exc}") from exc
                    continue
                failures, last = 0, self._clock()
                if answer is None:
                    raise TransientError(f"{self.server} no longer has job {job_id} (expired or lost)")
            state, now = str(answer.get("status")), self._clock()
            if state == "COMPLETED":
                result = self._result(job_id, answer, on_event)
                self.forecast.finished(job_id, queue_s=result.queue_seconds, work_s=result.gpu_seconds)
                return result
            if state in ("FAILED", "CANCELLED", "TIMED_OUT"):
                raise self._failure(job_id, state, answer)
            if state == "IN_PROGRESS" and started is None:
                started = now
                delay = ms_to_seconds(answer.get("delayTime"))
                # A resumed job's delayTime counts from a submission before the restart: taken now, then.
                self.forecast.started(job_id, submitted + delay if delay is not None and not resumed else now)
                emit(on_event, job_id, "started", {"server": self.server})
            elif state == "IN_QUEUE" and not waiting:
                waiting = True
                emit(on_event, job_id, "waiting", {"server": self.server})
            if started is None and now - submitted > self.queue_timeout:
                await self.cancel_quietly(job_id, on_event=on_event)
                raise JobTimeoutError(f"{self.server}: job {job_id} waited {now - submitted:.0f} s for a worker "
                                      f"(the setting comfy_queue_timeout is {self.queue_timeout:g} s)")
            if started is not None and now - started > limit:
                await self.cancel_quietly(job_id, on_event=on_event)
                raise JobTimeoutError(f"{self.server}: job {job_id} did not finish within {limit:g} s "
                                      f"of a worker taking it (ran {now - started:.0f} s)")
            answer = None

    def _result(self, job_id: str, answer: dict[str, Any], on_event: OnEvent | None) -> JobResult:
        output = dict_of(answer.get("output"))
        for warning in output.get("errors") or []:
            emit(on_event, job_id, "warning", {"message": f"{self.server}: {str(warning)[:300]}"})
        files = []
        for item in output.get("images") or []:
            if isinstance(item, dict) and item.get("type") in ("base64", "s3_url") and item.get("filename"):
                files.append({"filename": item["filename"], "data": item.get("data"),
                              "transport": "base64" if item["type"] == "base64" else "url"})
        queue_s, work_s = ms_to_seconds(answer.get("delayTime")), ms_to_seconds(answer.get("executionTime"))
        result = JobResult(job_id, output_refs(files), server=self.server)
        result.gpu_seconds, result.queue_seconds = work_s, queue_s
        return result

    def _failure(self, job_id: str, state: str, answer: dict[str, Any]) -> Exception:
        error = " ".join(str(answer.get("error") or "").split())[:500]
        details = dict_of(answer.get("output")).get("details")
        if isinstance(details, list) and details:
            error += " (" + "; ".join(" ".join(str(d).split())[:200] for d in details[:3]) + ")"
        if state == "CANCELLED":
            return JobInterruptedError(f"{self.server}: job {job_id} was cancelled on the endpoint")
        if state == "TIMED_OUT":
            return JobTimeoutError(f"{self.server}: job {job_id} timed out on the endpoint (its execution timeout)")
        if error.startswith("Workflow validation failed"):
            return WorkflowError(f"{self.server} rejected the workflow: {error}")
        return GenerationError(f"{self.server}: job {job_id} failed: {error or 'no error given'}")

