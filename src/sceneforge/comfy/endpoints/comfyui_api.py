"""SaladTechnologies' comfyui-api in front of a ComfyUI, as a member of the pool.

Follows comfyui-api 1.18.0 (commit 4dfc930b, README "Usage", "Image To Image Workflows",
"Probes" and ``src/server.ts``): ``POST /prompt`` with ``{"id", "prompt": <API graph>}`` runs the
graph and, without a webhook, answers ``200`` when it is done with ``{"id", "prompt", "images":
[<base64>], "filenames": [...], "stats": {"comfy_execution": {"total": {"start", "end",
"duration"}}, ...}}`` (every file of every output key: VideoHelperSuite's videos too); a
``LoadImage`` input may be the image itself as base64; a graph it refuses is a ``400`` with
``{"error", "location"}``. ``GET /ready`` is ``200`` once warm, ``503`` while ComfyUI is down or
its queue is full; ``POST /interrupt`` with ``{"id"}`` stops a prompt.

It keeps no jobs: a killed run cannot re-attach (``resume`` is always ``None``), and the
request is held open for the whole job, within ``queue_timeout + timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from ...errors import ConfigError, GenerationError, ServerUnavailableError, TransientError, WorkflowError
from ..protocol.driver import emit
from ..protocol.result import JobResult, dict_of
from ..protocol.watch import OnEvent
from .member import LOAD_IMAGE_CLASSES, EndpointMember, Sleep, output_refs

__all__ = ["ComfyApiClient"]

MiB = 1024 * 1024


class ComfyApiClient(EndpointMember):
    """One comfyui-api server (``base`` is its ``http(s)://HOST:PORT``)."""

    kind = "comfyui-api"

    def __init__(
        self, base: str, *, server: str, concurrency: int = 1, price_per_second: float | None = None,
        timeout: float = 300, queue_timeout: float = 900, session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.monotonic, http_timeout: float = 60,
        max_answer_bytes: int = 512 * MiB, max_download_bytes: int = 1024 * MiB, download_timeout: float = 600,
        verify_downloads: bool = True,
    ) -> None:
        super().__init__(
            base, server, headers={}, concurrency=concurrency, price_per_second=price_per_second, session=session,
            sleep=sleep, clock=clock, http_timeout=http_timeout, max_answer_bytes=max_answer_bytes,
            max_download_bytes=max_download_bytes, download_timeout=download_timeout,
            verify_downloads=verify_downloads,
        )
        self.timeout = float(timeout)
        self.queue_timeout = float(queue_timeout)

    async def system_stats(self) -> dict[str, Any]:
        """The pool's health check: ``GET /ready`` (503 while its ComfyUI is down or its queue full)."""
        try:
            status, answer = await self.call("GET", "ready", what="check it is ready")
        except TransientError as exc:
            raise ServerUnavailableError(str(exc)) from exc
        if status != 200:
            raise ServerUnavailableError(f"{self.server} is not ready (HTTP {status} from /ready)")
        return {"ready": dict_of(answer)}

    async def cancel(self, job_id: str) -> None:
        await self.call("POST", "interrupt", what="interrupt a prompt", body={"id": job_id})

    def _inline(self, graph: Mapping[str, Any]) -> dict[str, Any]:
        """The graph with each remembered ``LoadImage`` file replaced by its base64 bytes."""
        images = dict(self.inline_images(graph))
        out = copy.deepcopy(dict(graph))
        for node in out.values():
            if isinstance(node, dict) and node.get("class_type") in LOAD_IMAGE_CLASSES:
                inputs = node.get("inputs") or {}
                if isinstance(inputs.get("image"), str) and inputs["image"] in images:
                    inputs["image"] = base64.b64encode(images[inputs["image"]]).decode("ascii")
        return out

    async def run(self, graph: Mapping[str, Any], *, on_event: OnEvent | None = None,
                  on_submit: Callable[[str, str], object] | None = None, timeout: float | None = None) -> JobResult:
        """``POST /prompt`` and wait for its answer (the whole job)."""
        job_id = str(uuid.uuid4())
        if on_submit is not None:
            on_submit(job_id, self.kind)
        emit(on_event, job_id, "queued", {"number": None, "server": self.server})
        try:
            status, answer = await self.call("POST", "prompt", what="run the workflow",
                                             body={"id": job_id, "prompt": self._inline(graph)},
                                             timeout=self.queue_timeout + (timeout or self.timeout))
        except asyncio.CancelledError:
            if not self.keep_abandoned_jobs:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(asyncio.wait_for(self.cancel(job_id), 10.0))
            raise
        if status in (400, 422):
            raise WorkflowError(f"{self.server} refused the workflow: {dict_of(answer).get('error') or answer}"[:600])
        if status in (401, 403):
            raise ConfigError(f"{self.server} refused to run the workflow (HTTP {status})")
        if status != 200:
            raise GenerationError(f"{self.server}: the workflow failed (HTTP {status}: {str(answer)[:300]})")
        return self._result(job_id, dict_of(answer))

    def _result(self, job_id: str, answer: dict[str, Any]) -> JobResult:
        images, names = answer.get("images") or [], answer.get("filenames") or []
        if not isinstance(images, list) or not isinstance(names, list) or len(images) != len(names):
            raise TransientError(f"{self.server}: odd answer to /prompt (images and filenames do not pair up)")
        files = [{"filename": str(n), "data": str(d), "transport": "url" if str(d).startswith(("http://", "https://"))
                  else "base64"} for n, d in zip(names, images)]
        result = JobResult(job_id, output_refs(files, frozenset({".gif", ".webp"})), server=self.server)
        total = dict_of(dict_of(dict_of(answer.get("stats")).get("comfy_execution")).get("total"))
        duration = total.get("duration")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
            result.gpu_seconds = float(duration) / 1000.0
        return result

    async def resume(self, prompt_id: str, client_id: str, *, on_event: OnEvent | None = None,
                     timeout: float | None = None) -> JobResult | None:
        """comfyui-api keeps no jobs: a journaled one is run again."""
        return None
