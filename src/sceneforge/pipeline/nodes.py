"""The original system's node functions: ``audio_generator``, ``visual_generator``, ``motion_generator``.

Each takes a state ``{"topic", "scenes": [...]}`` and returns the updated state
(a new dict; unknown fields and keys are kept, and the other stages' fields are
left as they came), so they work as plain functions and as LangGraph nodes. The
``a``-prefixed forms are the async versions. Each runs one stage on the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..config import Settings, load_settings
from ..events import EventSink, null_sink
from .context import Sleep
from .engine import Engine
from .plan import DEFAULT_TOPIC, aplan_run
from .sync import run_sync

__all__ = [
    "audio_generator",
    "visual_generator",
    "motion_generator",
    "aaudio_generator",
    "avisual_generator",
    "amotion_generator",
    "generate_all_audios",
]


async def _run_node(
    state: Mapping[str, Any], settings: Settings | None, stage: str, on_event: EventSink | None, sleep: Sleep,
) -> dict[str, Any]:
    settings = settings or load_settings()
    if stage == "motion" and not settings.motion_enabled:
        return dict(state)  # the original system: with motion disabled the scenes pass through unchanged
    node_settings = settings.model_copy(update={"stages": (stage,)})
    plan = await aplan_run([state], node_settings)
    async with Engine(node_settings, sleep=sleep) as engine:
        sf = await engine.run_topic(plan.topics[0], emit=on_event or null_sink, other_stages="keep")
    out = dict(state)
    out["scenes"] = sf.state()["scenes"]
    return out


async def aaudio_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Narration for every scene (all concurrently); sets ``audio_path`` and ``audio_duration``."""
    return await _run_node(state, settings, "audio", on_event, sleep)


async def avisual_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """An image for every scene's ``image_prompt``; sets ``image_path``."""
    return await _run_node(state, settings, "image", on_event, sleep)


async def amotion_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Motion frames for every scene's image when motion is enabled; sets ``motion_frames_path``."""
    return await _run_node(state, settings, "motion", on_event, sleep)


def audio_generator(state: Mapping[str, Any], settings: Settings | None = None,
                    on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`aaudio_generator` (the original system's node)."""
    return run_sync(aaudio_generator(state, settings, on_event))


def visual_generator(state: Mapping[str, Any], settings: Settings | None = None,
                     on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`avisual_generator` (the original system's node)."""
    return run_sync(avisual_generator(state, settings, on_event))


def motion_generator(state: Mapping[str, Any], settings: Settings | None = None,
                     on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`amotion_generator` (the original system's node)."""
    return run_sync(amotion_generator(state, settings, on_event))


async def generate_all_audios(
    scenes: list[Any],
    topic: str = DEFAULT_TOPIC,
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> list[dict[str, Any]]:
    """The original system's helper: narration for all scenes concurrently; returns the updated scene dicts."""
    state = await aaudio_generator({"topic": topic, "scenes": scenes}, settings, on_event)
    return list(state["scenes"])
