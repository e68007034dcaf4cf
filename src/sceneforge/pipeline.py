"""``generate_assets(state)``: validate everything, then run the stages, return the new state."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import STAGES, Settings, load_settings
from .errors import AssetMissingError
from .events import EventSink, null_sink
from .fsutil import atomic_write_json, remove_stale_parts
from .images.base import ImageBackend, image_registry
from .layout import TopicLayout
from .lock import atopic_lock
from .motion.base import MotionBackend, motion_registry
from .runner import run_sync
from .scenes import Scene, SceneFile, parse_state
from .stages import (
    RunContext,
    build_tts,
    check_motion_inputs,
    check_prompts,
    forget_input_assets,
    image_cached,
    image_job,
    job_limit,
    motion_cached,
    motion_input_problem,
    motion_job,
    raise_failures,
    restore_cached,
    run_audio_stage,
    run_image_stage,
    run_motion_stage,
    start_or_fail_scenes,
)
from .tts.base import TTSBackend

__all__ = ["Backends", "generate_assets", "agenerate_assets", "prepare", "run_topic", "run_many", "write_scenes_json"]

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


@dataclass
class Backends:
    """The backend instances of a run, shared by every topic (and one ComfyUI pool shared by images and motion)."""

    tts: TTSBackend | None = None
    image: ImageBackend | None = None
    motion: MotionBackend | None = None
    pool: Any = None

    @classmethod
    def build(cls, settings: Settings) -> Backends:
        b = cls()
        comfy_needed = (settings.wants("image") and settings.image_engine == "comfyui") or (
            settings.run_motion and settings.motion_engine == "wan"
        )
        if comfy_needed:
            from .comfy.pooled import pool_from_settings

            b.pool = pool_from_settings(settings)
        if settings.wants("audio"):
            b.tts = build_tts(settings)
        if settings.wants("image"):
            b.image = _with_pool(image_registry.get(settings.image_engine), settings, b.pool)
        if settings.run_motion:
            b.motion = _with_pool(motion_registry.get(settings.motion_engine), settings, b.pool)
        return b

    async def aclose(self) -> None:
        for backend in (self.tts, self.image, self.motion):
            if backend is not None:
                with contextlib.suppress(Exception):
                    await backend.aclose()
        if self.pool is not None:
            await self.pool.aclose()


def _with_pool(cls: Any, settings: Settings, pool: Any) -> Any:
    """Build a backend, handing it the shared pool when it takes one."""
    if pool is not None and "pool" in inspect.signature(cls.from_settings).parameters:
        return cls.from_settings(settings, pool=pool)
    return cls.from_settings(settings)


async def _visual_chains(ctx: RunContext, scenes: list[Scene], b: Backends) -> None:
    """Images, and each scene's motion as soon as its image exists (overlap mode)."""
    settings = ctx.settings
    do_image, do_motion = settings.wants("image"), settings.run_motion
    if do_image:
        check_prompts(scenes)
    if do_motion and not do_image:
        check_motion_inputs(scenes)
    image_be, motion_be = b.image, b.motion
    for be in (image_be, motion_be):
        if be is not None:
            be.emit = ctx.emit
    if do_image:
        assert image_be is not None
        ctx.event("stage_started", "image", total=len(scenes), engine=image_be.name)
    if do_motion:
        assert motion_be is not None
        ctx.event("stage_started", "motion", total=len(scenes), engine=motion_be.name)
    image_todo = set()
    if do_image:
        assert image_be is not None
        image_todo = {n for n, s in enumerate(scenes, 1) if not image_cached(ctx, image_be, n, s)}
        if image_todo:
            try:
                await start_or_fail_scenes(ctx, image_be, "image", sorted(image_todo))
            except Exception:
                ctx.event("stage_done", "image", failed=len(image_todo))
                if do_motion:
                    for n in sorted(image_todo):
                        ctx.event("scene_failed", "motion", n, reason="its image failed")
                    ctx.event("stage_done", "motion", failed=len(image_todo))
                raise
    img_sem = asyncio.Semaphore(job_limit(image_be, settings)) if image_be else None
    mot_sem = asyncio.Semaphore(job_limit(motion_be, settings)) if motion_be else None
    failures: dict[str, list[tuple[int, BaseException]]] = {"image": [], "motion": []}

    async def chain(n: int, scene: Scene) -> None:
        if n in image_todo:
            assert image_be is not None and img_sem is not None
            try:
                async with img_sem:
                    await image_job(ctx, image_be, n, scene)
            except Exception as exc:  # noqa: BLE001 - collected, raised after every scene had its chance
                failures["image"].append((n, exc))
                if do_motion:
                    ctx.event("scene_failed", "motion", n, reason="its image failed")
                return
        if do_motion:
            assert motion_be is not None and mot_sem is not None
            try:
                problem = motion_input_problem(n, scene)
                if problem is not None:
                    if do_image and not ctx.selected(n):
                        return  # --scene N: the other scenes' images were not made in this run
                    raise AssetMissingError(problem)
                if motion_cached(ctx, motion_be, n, scene):
                    return
                await start_or_fail_scenes(ctx, motion_be, "motion", [n])
                async with mot_sem:
                    await motion_job(ctx, motion_be, n, scene)
            except Exception as exc:  # noqa: BLE001
                failures["motion"].append((n, exc))

    await asyncio.gather(*(chain(n, s) for n, s in enumerate(scenes, 1)))
    if do_image:
        ctx.event("stage_done", "image", failed=len(failures["image"]))
    if do_motion:
        ctx.event("stage_done", "motion", failed=len(failures["motion"]))
    raise_failures("image", failures["image"])
    raise_failures("motion", failures["motion"])


def _write_state_quietly(ctx: RunContext, sf: SceneFile, layout: TopicLayout) -> None:
    """Keep what finished even when the run failed; never mask the run's own error."""
    try:
        write_scenes_json(sf, layout)
    except Exception as exc:  # noqa: BLE001 - e.g. the disk that failed the run is still full
        ctx.event("warning", message=f"could not write {layout.scenes_json}: {exc}")


async def run_topic(
    sf: SceneFile,
    settings: Settings,
    *,
    emit: EventSink = null_sink,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    write_state: bool = True,
    backends: Backends | None = None,
) -> SceneFile:
    """Run the selected stages over one validated scene file.

    By default narration runs while images render and a scene's motion starts
    as soon as its image exists; ``settings.sequential`` keeps the seed's order.
    Both give the same scenes and files. Scenes are updated in place as each
    asset lands, so finished work is kept (and written to ``scenes.json``)
    even when another scene fails.
    """
    layout = TopicLayout.for_topic(settings.out_dir, sf.topic)
    ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, emit=emit, sleep=sleep)
    if settings.wants("image"):
        check_prompts(sf.scenes)
    own = backends is None
    b = backends or Backends.build(settings)
    try:
        async with atopic_lock(layout, wait=settings.lock_wait):
            remove_stale_parts(layout.root)
            ctx.event("run_started", total=len(sf.scenes), stages=[s for s in STAGES if settings.wants(s)])
            forget_input_assets(sf.scenes, settings)
            # Stages this run skips keep their valid cached results in scenes.json
            # (motion last: its cache key needs the images this run may make).
            for stage in ("audio", "image"):
                if not settings.wants(stage):
                    await restore_cached(ctx, sf.scenes, stage)
            try:
                if settings.sequential:
                    if settings.wants("audio"):
                        await run_audio_stage(ctx, sf.scenes, b.tts)
                    if settings.wants("image"):
                        await run_image_stage(ctx, sf.scenes, b.image)
                    if settings.run_motion:
                        await run_motion_stage(ctx, sf.scenes, b.motion)
                else:
                    await _overlapped(ctx, sf.scenes, b)
            except BaseException:
                if not settings.run_motion:
                    with contextlib.suppress(Exception):
                        await restore_cached(ctx, sf.scenes, "motion")
                if write_state:
                    _write_state_quietly(ctx, sf, layout)
                raise
            if not settings.run_motion:
                await restore_cached(ctx, sf.scenes, "motion")
            if write_state:
                write_scenes_json(sf, layout)
            ctx.event("run_done")
    finally:
        if own:
            await b.aclose()
    return sf


async def _overlapped(ctx: RunContext, scenes: list[Scene], b: Backends) -> None:
    settings = ctx.settings
    jobs: list[Awaitable[None]] = []
    if settings.wants("audio"):
        jobs.append(run_audio_stage(ctx, scenes, b.tts))
    if settings.wants("image") or settings.run_motion:
        jobs.append(_visual_chains(ctx, scenes, b))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if not errors:
        return
    first = errors[0]  # stage order: narration's error first, the others named after it
    if len(errors) > 1 and len(first.args) <= 1:
        also = "; ".join((str(e) or type(e).__name__).splitlines()[0] for e in errors[1:])
        first.args = (f"{first}\nalso: {also}",)
    raise first


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
    """Run several validated scene files sharing one set of backends (and one server pool).

    In overlap mode the files run at the same time; each keeps its own result or error.
    """
    b = Backends.build(settings)

    async def one(sf: SceneFile) -> tuple[SceneFile, BaseException | None]:
        try:
            await run_topic(sf, settings, emit=emit, sleep=sleep, backends=b)
            return sf, None
        except Exception as exc:  # noqa: BLE001 - reported per file by the caller
            return sf, exc

    try:
        if settings.sequential:
            return [await one(sf) for sf in sfs]
        return list(await asyncio.gather(*(one(sf) for sf in sfs)))
    finally:
        await b.aclose()
