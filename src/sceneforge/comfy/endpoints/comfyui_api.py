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

import base64
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import GenerationError, ServerUnavailableError, TransientError, WorkflowError
from ..protocol.result import JobResult, dict_of
from ..protocol.watch import OnEvent
from .member import LOAD_IMAGE_CLASSES, EndpointMember, ms_to_seconds, output_refs

__all__ = ["ComfyApiClient"]


class ComfyApiClient(EndpointMember):
    """One comfyui-api server (``base`` is its ``http(s)://HOST:PORT``)."""

    kind = "comfyui-api"

    async def system_stats(self) -> dict[str, Any]:
        """The pool's health check: ``GET /ready`` (503 while its ComfyUI is down or its queue full)."""
        status, answer = await self._probe(self.call("GET", "ready", what="check it is ready"))
        if status != 200:
            raise ServerUnavailableError(f"{self.server} is not ready (HTTP {status} from /ready)")
        return {"ready": dict_of(answer)}

    async def cancel(self, job_id: str) -> None:
        await self.call("POST", "interrupt", what="interrupt a prompt", body={"id": job_id})

    def _inline(self, graph: Mapping[str, Any]) -> dict[str, Any]:
        """The graph with each remembered ``LoadImage`` file replaced by its base64 bytes, in one pass (only
        the nodes changed are copied: ``graph`` itself is left as it is)."""
        out, encoded = dict(graph), {}
        for key, node in graph.items():
            if isinstance(node, dict) and node.get("class_type") in LOAD_IMAGE_CLASSES:
                inputs = node.get("inputs") or {}
                name = inputs.get("image")
                if isinstance(name, str) and name in self._inputs:
                    if name not in encoded:
                        encoded[name] = base64.b64encode(self._inputs[name].read_bytes()).decode("ascii")
                    out[key] = {**node, "inputs": {**inputs, "image": encoded[name]}}
        return out

    async def run(self, graph: Mapping[str, Any], *, on_event: OnEvent | None = None,
                  on_submit: Callable[[str, str], object] | None = None, timeout: float | None = None) -> JobResult:
        """``POST /prompt`` and wait for its answer (the whole job)."""
        job_id = str(uuid.uuid4())
        self._queued(job_id, on_event, on_submit)
        async with self._cancel_if_abandoned(job_id, on_event):
            status, answer = await self._json("POST", "prompt", "run the workflow",
                                              body={"id": job_id, "prompt": self._inline(graph)},
                                              timeout=self.queue_timeout + (timeout or self.timeout))
        if status in (400, 422):
            raise WorkflowError(f"{self.server} refused the workflow: {dict_of(answer).get('error') or answer}"[:600])
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
        result.gpu_seconds = ms_to_seconds(total.get("duration"))
        return result

    async def resume(self, prompt_id: str, client_id: str, *, on_event: OnEvent | None = None,
                     timeout: float | None = None) -> JobResult | None:
        """comfyui-api keeps no jobs: a journaled one is run again."""
        return None
