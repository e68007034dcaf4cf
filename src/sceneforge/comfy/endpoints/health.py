"""What ``doctor`` learns of the serverless endpoints of a pool, as data.

Each endpoint is asked for its health (RunPod ``/health``: workers idle and running, jobs queued and
in progress; comfyui-api ``/ready``). There is no ``/object_info`` behind an endpoint, so node types
and model files cannot be checked there (:data:`NOT_CHECKED` says so); the run's own static checks
still apply, among them whether each workflow's outputs can come back from a RunPod worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...config import Settings
from ..graphs.outputs import unreturnable_outputs
from ..pool.servers import members_from_settings
from .comfyui_api import ComfyApiClient
from .runpod import RunPodClient
from .urls import member_kind

__all__ = ["EndpointFindings", "endpoint_findings", "NOT_CHECKED"]

NOT_CHECKED = "no /object_info behind an endpoint: node types and model files cannot be checked here"
_HTTP_TIMEOUT = 30.0


@dataclass
class EndpointFindings:
    """One endpoint: ``error`` when it cannot be used, else its ``health`` and, per workflow label,
    the lines saying why its outputs could not come back (empty: they do)."""

    server: str
    kind: str
    error: str | None = None
    health: str = ""
    outputs: dict[str, list[str]] = field(default_factory=dict)


def _health_line(answer: dict[str, Any]) -> str:
    if "endpoint" in answer:
        workers, jobs = answer["endpoint"].get("workers") or {}, answer["endpoint"].get("jobs") or {}
        return (f"workers {workers.get('idle', '?')} idle, {workers.get('running', '?')} running; "
                f"jobs {jobs.get('inQueue', '?')} queued, {jobs.get('inProgress', '?')} in progress")
    return f"ready ({(answer.get('ready') or {}).get('status', 'ready')})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def endpoint_findings(settings: Settings, graphs: Mapping[str, Mapping[str, Any]]) -> list[EndpointFindings]:
    """The findings of every endpoint in ``settings.comfy_urls``; ``graphs`` maps workflow label -> graph."""
    if all(member_kind(u) == "comfyui" for u in settings.comfy_urls):
        return []
    try:
        members = [m for m in members_from_settings(settings) if isinstance(m, (RunPodClient, ComfyApiClient))]
    except Exception as exc:  # noqa: BLE001 - a missing key is a finding
        return [EndpointFindings(server="endpoints", kind="", error=_first_line(exc))]
    try:
        for m in members:
            m.http_timeout = min(m.http_timeout, _HTTP_TIMEOUT)
        answers = await asyncio.gather(*(m.system_stats() for m in members), return_exceptions=True)
    finally:
        await asyncio.gather(*(m.aclose() for m in members), return_exceptions=True)
    found = []
    for member, answer in zip(members, answers):
        if isinstance(answer, BaseException):
            found.append(EndpointFindings(member.server, member.kind, error=_first_line(answer)))
            continue
        outputs = {label: unreturnable_outputs(graph, member.server) if member.kind == "runpod" else []
                   for label, graph in graphs.items()}
        found.append(EndpointFindings(member.server, member.kind, health=_health_line(answer), outputs=outputs))
    return found
