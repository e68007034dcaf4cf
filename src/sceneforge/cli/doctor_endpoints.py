"""``sceneforge doctor`` for the serverless endpoints of the pool (RunPod, comfyui-api).

Each endpoint is asked for its health (RunPod ``/health``: workers idle and running, jobs queued and
in progress; comfyui-api ``/ready``). What cannot be checked there is said: there is no
``/object_info`` behind an endpoint, so node types and model files are not checked; the run's own
static checks still apply, among them whether a workflow's outputs can come back from a RunPod worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..comfy.endpoints.comfyui_api import ComfyApiClient
from ..comfy.endpoints.runpod import RunPodClient
from ..comfy.endpoints.urls import member_kind
from ..comfy.graphs.outputs import unreturnable_outputs
from ..comfy.pool.servers import members_from_settings, runpod_key
from ..config import Settings, redact_url

__all__ = ["report_endpoints", "endpoint_secrets"]

_HTTP_TIMEOUT = 30.0


def endpoint_secrets() -> list[str]:
    """The RunPod key of the environment, so the report scrubs it should anything ever echo it."""
    key = runpod_key()
    return [key] if len(key) >= 3 else []


def _health_line(answer: dict[str, Any]) -> str:
    if "endpoint" in answer:
        workers, jobs = answer["endpoint"].get("workers") or {}, answer["endpoint"].get("jobs") or {}
        return (f"reachable: workers {workers.get('idle', '?')} idle, {workers.get('running', '?')} running; "
                f"jobs {jobs.get('inQueue', '?')} queued, {jobs.get('inProgress', '?')} in progress")
    return f"ready ({(answer.get('ready') or {}).get('status', 'ready')})"


async def report_endpoints(report: Any, settings: Settings, workflows: list[Any]) -> None:
    """One section per endpoint of ``settings.comfy_urls`` (``report`` is doctor's ✓/✗ printer)."""
    urls = [u for u in settings.comfy_urls if member_kind(u) != "comfyui"]
    if not urls:
        return
    try:
        members = [m for m in members_from_settings(settings) if isinstance(m, (RunPodClient, ComfyApiClient))]
    except Exception as exc:  # noqa: BLE001 - a missing key is a finding
        report.heading("Endpoints")
        report.bad(str(exc).splitlines()[0])
        return
    try:
        for m in members:
            m.http_timeout = min(m.http_timeout, _HTTP_TIMEOUT)
        answers = await asyncio.gather(*(m.system_stats() for m in members), return_exceptions=True)
        for member, answer in zip(members, answers):
            kind = "RunPod endpoint" if member.kind == "runpod" else "comfyui-api"
            report.heading(f"{kind} {member.server}")
            if isinstance(answer, BaseException):
                report.bad(f"not usable: {str(answer).strip().splitlines()[0] if str(answer).strip() else answer!r}")
                continue
            report.ok(_health_line(answer))
            report.note("no /object_info behind an endpoint: node types and model files cannot be checked here")
            for check in workflows:
                if member.kind != "runpod" or check.workflow is None:
                    continue
                lines = unreturnable_outputs(check.workflow.graph, redact_url(member.server))
                if lines:
                    report.bad(f"{check.label}: its outputs cannot come back from this endpoint", lines)
                else:
                    report.ok(f"{check.label}: its outputs come back from worker-comfyui")
    finally:
        await asyncio.gather(*(m.aclose() for m in members), return_exceptions=True)
