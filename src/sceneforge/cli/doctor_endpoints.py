"""``sceneforge doctor``'s section for the serverless endpoints of the pool (RunPod, comfyui-api): their
health and what cannot be checked there (:func:`sceneforge.comfy.endpoints.health.endpoint_findings`)."""

from __future__ import annotations

from typing import Any

from ..comfy.endpoints.health import NOT_CHECKED, endpoint_findings
from ..comfy.pool.servers import runpod_key
from ..config import Settings

__all__ = ["report_endpoints", "endpoint_secrets"]


def endpoint_secrets() -> list[str]:
    """The RunPod key of the environment, so the report scrubs it should anything ever echo it."""
    key = runpod_key()
    return [key] if len(key) >= 3 else []


async def report_endpoints(report: Any, settings: Settings, workflows: list[Any]) -> None:
    """One section per endpoint (``report`` is doctor's ✓/✗ printer, ``workflows`` its loaded checks)."""
    graphs = {w.label: w.workflow.graph for w in workflows if w.workflow is not None}
    for found in await endpoint_findings(settings, graphs):
        kind = {"runpod": "RunPod endpoint", "comfyui-api": "comfyui-api"}.get(found.kind, "")
        report.heading(f"{kind} {found.server}".strip())
        if found.error is not None:
            report.bad(f"not usable: {found.error}" if found.kind else found.error)
            continue
        report.ok(f"reachable: {found.health}" if found.kind == "runpod" else found.health)
        report.note(NOT_CHECKED)
        for label, lines in found.outputs.items():
            if lines:
                report.bad(f"{label}: its outputs cannot come back from this endpoint", lines)
            elif found.kind == "runpod":
                report.ok(f"{label}: its outputs come back from worker-comfyui")
