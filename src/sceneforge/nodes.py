"""The seed's node functions: ``audio_generator``, ``visual_generator``, ``motion_generator``.

Each takes a state ``{"topic", "scenes": [...]}`` and returns the updated state
(a new dict; unknown fields and keys are kept), so they work as plain functions
and as LangGraph nodes. The ``a``-prefixed forms are the async versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .config import Settings, load_settings
from .events import EventSink, null_sink
from .layout import TopicLayout
from .lock import atopic_lock
from .pipeline import DEFAULT_TOPIC
from .runner import run_sync
from .scenes import parse_state
from .stages import RunContext, run_audio_stage, run_image_stage, run_motion_stage

__all__ = [
    "audio_generator",
    "visual_generator",
    "motion_generator",
    "aaudio_generator",
    "avisual_generator",
    "amotion_generator",
    "generate_all_audios",
]

_Stage = Callable[..., Awaitable[None]]


async def _run_node(
    state: Mapping[str, Any],
    settings: Settings | None,
    stage: str,
    runner: _Stage,
    on_event: EventSink | None,
    sleep: Callable[[float], Awaitable[object]],
) -> dict[str, Any]:
    settings = settings or load_settings()
    if stage == "motion" and not settings.motion_enabled:
        # The seed: with motion disabled the scenes pass through unchanged.
        return dict(state)
    sf = parse_state(
        state,
        default_topic=DEFAULT_TOPIC,
        need_script=stage == "audio",
        need_prompt=stage in ("image", "motion"),
    )
    layout = TopicLayout.for_topic(settings.out_dir, sf.topic)
    ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, emit=on_event or null_sink, sleep=sleep)
    async with atopic_lock(layout, wait=settings.lock_wait):
        await runner(ctx, sf.scenes)
    out = dict(state)
    out["scenes"] = sf.state()["scenes"]
    return out


async def aaudio_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> dict[str, Any]:
    """Narration for every scene (all concurrently); sets ``audio_path`` and ``audio_duration``."""
    return await _run_node(state, settings, "audio", run_audio_stage, on_event, sleep)


async def avisual_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> dict[str, Any]:
    """An image for every scene's ``image_prompt``; sets ``image_path``."""
    return await _run_node(state, settings, "image", run_image_stage, on_event, sleep)


async def amotion_generator(
    state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None,
    *, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> dict[str, Any]:
    """Motion frames for every scene's image when motion is enabled; sets ``motion_frames_path``."""
    return await _run_node(state, settings, "motion", run_motion_stage, on_event, sleep)


def audio_generator(state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`aaudio_generator` (the seed's node)."""
    return run_sync(aaudio_generator(state, settings, on_event))


def visual_generator(state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`avisual_generator` (the seed's node)."""
    return run_sync(avisual_generator(state, settings, on_event))


def motion_generator(state: Mapping[str, Any], settings: Settings | None = None, on_event: EventSink | None = None) -> dict[str, Any]:
    """Synchronous :func:`amotion_generator` (the seed's node)."""
    return run_sync(amotion_generator(state, settings, on_event))


async def generate_all_audios(
    scenes: list[Any],
    topic: str = DEFAULT_TOPIC,
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> list[dict[str, Any]]:
    """The seed's helper: narration for all scenes concurrently; returns the updated scene dicts."""
    state = await aaudio_generator({"topic": topic, "scenes": scenes}, settings, on_event)
    return state["scenes"]
