"""Workflows checked against the servers' ``/object_info`` before any work.

Each distinct graph a run will submit (the run's workflow and every scene's own) is
checked against every server that answers: node types it lacks, inputs missing or out of
range, and model files missing from a non-empty list (a server that lists no model for an
input says nothing about it). A workflow is refused only when every answering server
would refuse it; no answering server at all is the health check's to report. Answers are
kept a minute per server, so a service planning many jobs asks once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from ..config import Settings
from .models import missing_models
from .servers import clients_from_settings
from .validate import validate_graph

__all__ = ["preflight", "graph_problems"]

_TTL = 60.0
_answers: dict[str, tuple[float, dict[str, Any]]] = {}
_ASK_TIMEOUT = 20.0


def graph_problems(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """What one server would refuse in ``graph``, one line each."""
    missing = missing_models(graph, object_info, known_only=True)
    return validate_graph(graph, object_info) + [f"model file {name} is not on the server" for name in missing]


async def _object_infos(settings: Settings) -> list[dict[str, Any]]:
    now, fresh, ask = time.monotonic(), [], []
    for client in clients_from_settings(settings):
        cached = _answers.get(client.server)
        if cached is not None and now - cached[0] < _TTL:
            fresh.append(cached[1])
            await client.aclose()
        else:
            client.http_timeout = min(client.http_timeout, _ASK_TIMEOUT)
            ask.append(client)
    try:
        answers = await asyncio.gather(*(c.object_info() for c in ask), return_exceptions=True)
    finally:
        await asyncio.gather(*(c.aclose() for c in ask), return_exceptions=True)
    for client, info in zip(ask, answers):
        if isinstance(info, dict) and info:
            _answers[client.server] = (now, info)
            fresh.append(info)
    return fresh


async def preflight(settings: Settings, graphs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each labelled graph, the problems every answering server finds (none: not in the result)."""
    if not graphs:
        return {}
    infos = await _object_infos(settings)
    if not infos:
        return {}
    refused: dict[str, list[str]] = {}
    for label, graph in graphs.items():
        per_server = [graph_problems(graph, info) for info in infos]
        if all(per_server):
            refused[label] = per_server[0]
    return refused
