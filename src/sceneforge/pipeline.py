"""``generate_assets(state)``: validate everything, then run the stages, return the new state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .config import Settings, load_settings
from .events import EventSink, null_sink
from .fsutil import atomic_write_json, remove_stale_parts
from .layout import TopicLayout
from .lock import topic_lock
from .runner import run_sync
from .scenes import SceneFile, parse_state
from .stages import RunContext, check_prompts, run_audio_stage, run_image_stage, run_motion_stage

__all__ = ["generate_assets", "agenerate_assets", "prepare", "run_topic", "run_many", "write_scenes_json"]

DEFAULT_TOPIC = "untitled"


def prepare(state: Mapping[str, Any] | list[Any], settings: Settings, *, label: str = "") -> SceneFile:
    """Validate a state (or a bare scene list) for the stages ``settings`` will run."""
    need_prompt = settings.wants("image") or settings.run_motion
    return parse_state(
        state,
        default_topic=DEFAULT_TOPIC,
        need_script="audio" in settings.stages,
        need_prompt=need_prompt,
        label=label,
    )


def write_scenes_json(sf: SceneFile, layout: TopicLayout) -> None:
    """Write the resulting state next to the assets (atomically)."""
    atomic_write_json(layout.scenes_json, sf.state())


async def run_topic(
    sf: SceneFile,
    settings: Settings,
    *,
    emit: EventSink = null_sink,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    write_state: bool = True,
) -> SceneFile:
    """Run the selected stages over one validated scene file, in the seed's order.

    The scenes are updated in place as each asset lands, so whatever finished
    is kept (and written to ``scenes.json``) even when a later scene fails.
    """
    layout = TopicLayout.for_topic(settings.out_dir, sf.topic)
    ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, emit=emit, sleep=sleep)
    if settings.wants("image"):
        check_prompts(sf.scenes)
    with topic_lock(layout, wait=settings.lock_wait):
        remove_stale_parts(layout.root)
        ctx.event("run_started", total=len(sf.scenes), stages=list(settings.stages))
        try:
            if settings.wants("audio"):
                await run_audio_stage(ctx, sf.scenes)
            if settings.wants("image"):
                await run_image_stage(ctx, sf.scenes)
            if settings.run_motion:
                await run_motion_stage(ctx, sf.scenes)
        finally:
            if write_state:
                write_scenes_json(sf, layout)
        ctx.event("run_done")
    return sf


async def agenerate_assets(
    state: Mapping[str, Any],
    settings: Settings | None = None,
    on_event: EventSink | None = None,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> dict[str, Any]:
    """Async form of :func:`generate_assets`."""
    settings = settings or load_settings()
    sf = prepare(state, settings)
    await run_topic(sf, settings, emit=on_event or null_sink, sleep=sleep)
    return sf.state()


def generate_assets(
    state: Mapping[str, Any],
    settings: Settings | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """Turn a state ``{"topic", "scenes": [...]}`` into assets and return the new state.

    Everything is validated before any work starts (``ValueError`` listing every
    problem); the scenes come back with ``audio_path``, ``image_path`` and, when
    motion is enabled, ``motion_frames_path`` filled in. Unknown fields are kept.
    """
    return run_sync(agenerate_assets(state, settings, on_event))


async def run_many(
    sfs: list[SceneFile],
    settings: Settings,
    *,
    emit: EventSink = null_sink,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[tuple[SceneFile, BaseException | None]]:
    """Run several validated scene files; each keeps its own result or error."""
    results: list[tuple[SceneFile, BaseException | None]] = []
    for sf in sfs:
        try:
            await run_topic(sf, settings, emit=emit, sleep=sleep)
            results.append((sf, None))
        except Exception as exc:  # noqa: BLE001 - reported per file by the caller
            results.append((sf, exc))
    return results
