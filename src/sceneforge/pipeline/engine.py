"""The engine: shared resources and backends, and one topic's run from lock to ``scenes.json``.

An :class:`Engine` owns what every topic of a run (or of a long-lived service)
shares: the ComfyUI server pool and the backend instances, built from settings
by name. :meth:`Engine.run_topic` runs one validated topic: it takes the topic's
lock, drops input paths it cannot trust, restores what skipped stages still have
in the cache, runs the scene chains, and writes ``scenes.json`` even when a scene
failed (finished work is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from ..backend import Backend, BackendResources
from ..config import STAGES, Settings
from ..errors import AssetMissingError
from ..events import EventSink, null_sink
from ..fsutil import remove_stale_parts
from ..images.base import image_registry
from ..lock import atopic_lock
from ..motion.base import motion_registry
from ..scenes import SceneFile
from ..takes import recorded_motion_pin
from ..tts.base import tts_registry
from .context import RunContext, Sleep, forget_input_assets
from .folder import claim_topic_folder
from .schedule import run_chains
from .state import write_scenes_json
from .steps import STEPS, Step, motion_input_problem
from .workspace import Topic

__all__ = ["Engine", "StageBackends", "write_scenes_json"]


def _needs_pool(settings: Settings) -> bool:
    return (settings.wants("image") and settings.image_engine == "comfyui") or (
        settings.run_motion and settings.motion_engine == "wan"
    )


def build_backend(stage: str, settings: Settings, resources: BackendResources) -> Backend:
    """The backend a stage uses under ``settings``, by its registered name."""
    if stage == "audio":
        return tts_registry.get(settings.tts_engine).from_settings(settings, resources)
    if stage == "image":
        return image_registry.get(settings.image_engine).from_settings(settings, resources)
    return motion_registry.get(settings.motion_engine).from_settings(settings, resources)


@dataclass
class StageBackends:
    """The backends of the stages one set of settings runs."""

    by_stage: dict[str, Backend]

    async def aclose(self) -> None:
        for backend in self.by_stage.values():
            with contextlib.suppress(Exception):
                await backend.aclose()


class Engine:
    """Shared resources and backends for any number of topics (use as ``async with``).

    ``settings`` are the defaults; :meth:`run_topic` may be given other settings for one
    topic (another voice, workflow or engine), whose backends are built on the same
    shared resources and kept for the engine's lifetime.
    """

    def __init__(self, settings: Settings, *, sleep: Sleep = asyncio.sleep,
                 resources: BackendResources | None = None) -> None:
        self.settings = settings
        self.sleep = sleep
        self._own_resources = resources is None
        self.resources = resources or BackendResources.none()
        self._backends: dict[str, StageBackends] = {}

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _ensure_pool(self, settings: Settings) -> None:
        if self.resources.pool is None and _needs_pool(settings):
            from ..comfy.pool.servers import pool_from_settings

            self.resources.pool = pool_from_settings(settings)

    def backends(self, settings: Settings | None = None) -> StageBackends:
        """The backends of the stages ``settings`` runs (built once per distinct settings)."""
        settings = settings or self.settings
        # Which scenes a run selects and whether it forces them never change a backend: a long-lived
        # engine (the service) re-rolling scene after scene keeps one set of backends, not one per re-roll.
        key = settings.model_dump_json(exclude={"only_scenes", "force"})
        if key not in self._backends:
            self._ensure_pool(settings)
            wanted = [s for s in STAGES if settings.wants(s)]
            self._backends[key] = StageBackends({s: build_backend(s, settings, self.resources) for s in wanted})
        return self._backends[key]

    async def aclose(self) -> None:
        """Close every backend, then the shared pool (when this engine made it)."""
        for group in self._backends.values():
            await group.aclose()
        self._backends.clear()
        if self._own_resources and self.resources.pool is not None:
            await self.resources.pool.aclose()
            self.resources.pool = None

    async def run_topic(self, sf: SceneFile, *, settings: Settings | None = None, emit: EventSink = null_sink,
                        write_state: bool = True, other_stages: str = "restore", topic: Topic | None = None
                        ) -> SceneFile:
        """Run the selected stages over one validated topic; scenes are updated in place.

        ``other_stages`` says what happens to the fields of stages this run skips:
        ``"restore"`` rebuilds them from valid cache records (a run), ``"keep"`` leaves
        the input's as they are (a single node of the original system's graph).
        Raises the first failure (every failed scene is in the events and in the error's
        notes) after every scene had its chance and ``scenes.json`` was written. ``topic`` is
        the workspace to run in (default: the one the topic's title names under ``out_dir``).
        """
        settings = settings or self.settings
        layout = (topic or Topic.named(settings.out_dir, sf.topic)).layout  # the workspace it runs
        ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, emit=emit, sleep=self.sleep,
                         reference=sf.reference_image)
        backends = self.backends(settings)
        async with atopic_lock(layout, wait=settings.lock_wait):
            claim_topic_folder(sf.topic, layout)  # again under the lock: another topic may have taken it meanwhile
            remove_stale_parts(layout.root)
            ctx.event("run_started", total=len(sf.scenes), stages=[s for s in STAGES if settings.wants(s)])
            restore = other_stages == "restore"
            forget_input_assets(sf.scenes, settings, only_wanted=not restore,
                                motion_pin=lambda n: recorded_motion_pin(ctx.cache, n))
            try:
                if restore:
                    await self._restore_skipped(ctx, sf, ("audio", "image"))
                await self._run_stages(ctx, sf, backends)
            except BaseException:
                await self._finish(ctx, sf, write_state, restore, quietly=True)
                raise
            await self._finish(ctx, sf, write_state, restore)
            ctx.event("run_done")
        return sf

    async def _run_stages(self, ctx: RunContext, sf: SceneFile, backends: StageBackends) -> None:
        settings = ctx.settings
        if settings.run_motion and not settings.wants("image"):
            # The original system: a missing motion input image is a FileNotFoundError before any job.
            problems = [p for n, s in enumerate(sf.scenes, 1) if ctx.selected(n) and (p := motion_input_problem(n, s))]
            if problems:
                raise AssetMissingError("\n".join(problems))
        steps = [STEPS[stage](ctx, backend) for stage, backend in backends.by_stage.items()]
        limits = {step.stage: self._limit(step, settings) for step in steps}
        await run_chains(ctx, sf.scenes, steps, limits)

    @staticmethod
    def _limit(step: Step[Any, Any], settings: Settings) -> int:
        """Jobs of a stage in flight at once: 1 for images and motion in the original order,
        else the backend's own limit (or the settings' when it has none)."""
        if step.stage == "audio":
            return settings.tts_concurrency or step.backend.max_concurrency or 4
        if settings.sequential:
            return 1
        return step.backend.max_concurrency or settings.image_concurrency

    async def _restore_skipped(self, ctx: RunContext, sf: SceneFile, stages: tuple[str, ...]) -> None:
        """Stages this run skips keep their valid cached results in ``scenes.json``.

        A record counts only when it matches the current settings and its files are complete.
        """
        for stage in stages:
            if ctx.settings.wants(stage) or not (ctx.layout.state_dir / stage).is_dir():
                continue
            try:
                backend = build_backend(stage, ctx.settings, BackendResources.none())
            except Exception:  # noqa: BLE001 - an unusable backend setting just means nothing to restore
                continue
            try:
                step = STEPS[stage](ctx, backend)
                for n, scene in enumerate(sf.scenes, 1):
                    if stage != "image" or scene.image_prompt:
                        step.restore(n, scene)
            finally:
                await backend.aclose()

    async def _finish(self, ctx: RunContext, sf: SceneFile, write_state: bool, restore: bool, *,
                      quietly: bool = False) -> None:
        """Restore skipped motion (its key needs this run's images), then write ``scenes.json``."""
        if restore and not ctx.settings.run_motion:
            with contextlib.suppress(Exception):
                await self._restore_skipped(ctx, sf, ("motion",))
        if not write_state:
            return
        sf.extra.update(ctx.usage.top_level())
        try:
            write_scenes_json(sf, ctx.layout)
        except Exception as exc:
            if not quietly:
                raise
            # Keep the run's own error: e.g. the disk that failed the run is still full.
            ctx.event("warning", message=f"could not write {ctx.layout.scenes_json}: {exc}")
