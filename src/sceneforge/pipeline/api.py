"""The library's front door: ``generate_assets`` (and its async form) and ``run_many``.

Everything is validated first (:func:`~sceneforge.pipeline.plan.plan_run`), then
the topics run on one :class:`~sceneforge.pipeline.engine.Engine` that shares
its server pool and backends between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import Settings, load_settings
from ..events import EventSink, null_sink
from ..scenes import SceneFile
from .context import Sleep
from .engine import Engine
from .plan import RunPlan, Source, aplan_run
from .sync import run_sync
from .tasks import gather_all

__all__ = ["generate_assets", "agenerate_assets", "run_many", "TopicResult"]

#: One topic's outcome in :func:`run_many`: the topic (its scenes updated in place) and its error, if any.
TopicResult = tuple[SceneFile, BaseException | None]


async def agenerate_assets(
    state: Mapping[str, Any] | list[Any],
    settings: Settings | None = None,
    on_event: EventSink | None = None,
    *,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Async form of :func:`generate_assets`."""
    settings = settings or load_settings()
    plan = await aplan_run([state], settings)
    async with Engine(settings, sleep=sleep) as engine:
        sf = await engine.run_topic(plan.topics[0], emit=on_event or null_sink)
    return sf.state()


def generate_assets(
    state: Mapping[str, Any] | list[Any],
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """Turn a state ``{"topic", "scenes": [...]}`` into assets and return the new state.

    Everything is validated before any work starts (``ValueError`` listing every
    problem); the scenes come back with ``audio_path``, ``image_path`` and, when
    motion is enabled, ``motion_frames_path`` filled in. Unknown fields are kept.
    Safe to call from a script, a notebook or a running event loop.
    """
    return run_sync(agenerate_assets(state, settings, on_event))


async def run_many(
    sources: RunPlan | Sequence[Source],
    settings: Settings | None = None,
    *,
    emit: EventSink = null_sink,
    sleep: Sleep = asyncio.sleep,
) -> list[TopicResult]:
    """Run several topics (scene files, states, or a checked :class:`RunPlan`) sharing one engine.

    The topics run at the same time (one after another with ``settings.sequential``);
    each keeps its own result or error, in the order given.
    """
    plan = sources if isinstance(sources, RunPlan) else await aplan_run(list(sources), settings or load_settings())
    async with Engine(plan.settings, sleep=sleep) as engine:

        async def one(sf: SceneFile) -> TopicResult:
            try:
                await engine.run_topic(sf, emit=emit)
                return sf, None
            except Exception as exc:  # noqa: BLE001 - reported per topic by the caller
                return sf, exc

        if plan.settings.sequential:
            return [await one(sf) for sf in plan.topics]
        return await gather_all(*(one(sf) for sf in plan.topics))
