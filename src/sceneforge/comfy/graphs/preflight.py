"""Workflows checked against the servers' node specs before any work.

Each distinct graph a run will submit (the run's workflow and every scene's own) is
checked against every server that answers: node types it lacks, inputs missing or out of
range, and model files missing from a non-empty list (a server that lists no model for an
input says nothing about it). A workflow is refused only when every answering server
would refuse it; no answering server at all is the health check's to report.

Only the node classes the graphs use are asked for (``GET /object_info/<class>``, a few
kB each, all at once) rather than the whole ``/object_info`` (1.6 MB and about half a
second on a stock server, tens of MB with many custom nodes). Answers are kept a minute
per server and class, so a service planning many jobs asks once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ...config import Settings, redact_url
from ..client import ComfyClient
from ..endpoints.urls import member_kind
from ..pool.servers import clients_from_settings
from .models import missing_models
from .outputs import unreturnable_outputs
from .validate import validate_graph

__all__ = ["preflight", "graph_problems", "node_classes"]

_TTL = 60.0
_ASK_TIMEOUT = 20.0
_ASK_AT_ONCE = 8
# (server, node class) -> (when asked, its spec or None when the server does not know it)
_answers: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}


def graph_problems(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """What one server would refuse in ``graph``, one line each."""
    missing = missing_models(graph, object_info, known_only=True)
    return validate_graph(graph, object_info) + [f"model file {name} is not on the server" for name in missing]


def node_classes(graphs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every ``class_type`` the graphs use."""
    found = set()
    for graph in graphs:
        for node in graph.values():
            if isinstance(node, Mapping) and isinstance(node.get("class_type"), str):
                found.add(node["class_type"])
    return found


async def _specs(client: ComfyClient, classes: set[str], now: float) -> dict[str, Any] | None:
    """The specs ``client``'s server gives for ``classes`` (unknown ones left out); None if it did not answer."""
    gate = asyncio.Semaphore(_ASK_AT_ONCE)

    async def ask(cls: str) -> None:
        async with gate:
            info = await client.object_info(cls)
        spec = info.get(cls)
        _answers[(client.server, cls)] = (now, spec if isinstance(spec, dict) else None)

    stale = [c for c in classes if now - _answers.get((client.server, c), (-_TTL, None))[0] >= _TTL]
    results = await asyncio.gather(*(ask(c) for c in stale), return_exceptions=True)
    if any(isinstance(r, BaseException) for r in results):
        return None  # a server that does not answer is the health check's to report
    specs = {c: _answers[(client.server, c)][1] for c in classes}
    known = {c: spec for c, spec in specs.items() if spec is not None}
    return known or None  # knowing none of them is not a ComfyUI to judge by


async def _object_infos(settings: Settings, classes: set[str]) -> list[dict[str, Any]]:
    now = time.monotonic()
    clients = clients_from_settings(settings)
    for client in clients:
        client.http_timeout = min(client.http_timeout, _ASK_TIMEOUT)
    try:
        answers = await asyncio.gather(*(_specs(c, classes, now) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return [info for info in answers if info is not None]


async def preflight(settings: Settings, graphs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each labelled graph, the problems every answering server finds (none: not in the result).

    A graph whose outputs a RunPod endpoint of the pool could not return is refused too (the pool may
    send any job there); there is no ``/object_info`` behind an endpoint, so that is all it is checked for.
    """
    if not graphs:
        return {}
    refused: dict[str, list[str]] = {}
    runpod = [redact_url(u) for u in settings.comfy_urls if member_kind(u) == "runpod"]
    for label, graph in graphs.items():
        if runpod and (lines := unreturnable_outputs(graph, runpod[0])):
            refused[label] = lines
    infos = await _object_infos(settings, node_classes(graphs.values())) if any(
        member_kind(u) == "comfyui" for u in settings.comfy_urls) else []
    for label, graph in graphs.items():
        if label in refused or not infos:
            continue
        per_server = [graph_problems(graph, info) for info in infos]
        if all(per_server):
            refused[label] = per_server[0]
    return refused
