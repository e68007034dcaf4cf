"""The one scheduler: a chain per scene, ``audio ∥ (image → motion)``.

Every scene runs its own chain: its narration alongside its image, and its motion
as soon as its image exists. Each stage has a :class:`StageTrack` that owns what
exists once per stage of a topic: the ``stage_started``/``stage_done`` events, the
health check (one per stage, shared by every scene that needs it), the limit on
jobs in flight, and the failures.

The original system's order (``--sequential``) is the same runner with barriers
between the stages (a stage starts when the one before it has finished for every
scene) and one image or motion job at a time; narration stays concurrent, as the
original ``generate_all_audios`` is. Both orders give the same scenes and files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AssetMissingError, add_scene_context, describe, error_text
from ..scenes import Scene
from .context import RunContext
from .steps import Step
from .tasks import gather_all
from .usage import stage_usage

__all__ = ["StageTrack", "run_chains", "raise_failures"]


@dataclass
class StageTrack:
    """One stage of one topic run."""

    step: Step[Any, Any]
    total: int
    limit: int
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[tuple[int, BaseException]] = field(default_factory=list)
    finished: int = 0
    next_track: StageTrack | None = None  # opened when this one finishes (sequential order)
    _health: asyncio.Task[None] | None = None
    _sem: asyncio.Semaphore | None = None

    @property
    def stage(self) -> str:
        return self.step.stage

    def open(self) -> None:
        """Let scenes into this stage (``stage_started``)."""
        if not self.gate.is_set():
            self.step.ctx.event("stage_started", self.stage, total=self.total, engine=self.step.backend.name)
            self.gate.set()
            if self.total == 0:
                self._done()

    def finish(self, n: int, exc: BaseException | None = None) -> None:
        """Scene ``n`` is through this stage (made, cached, skipped or failed)."""
        if exc is not None:
            self.failures.append((n, exc))
        self.finished += 1
        if self.finished == self.total:
            self._done()

    def _done(self) -> None:
        self.step.ctx.event("stage_done", self.stage, failed=len(self.failures))
        if self.next_track is not None:
            self.next_track.open()

    async def healthy(self) -> None:
        """The backend's health check, run once for the stage however many scenes wait on it."""
        if self._health is None:
            self._health = asyncio.ensure_future(self.step.backend.start())
        await asyncio.shield(self._health)

    async def run(self, n: int, scene: Scene) -> None:
        """Scene ``n``'s job: health check, a free slot, then the step with its events."""
        ctx = self.step.ctx
        await self.healthy()
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.limit)
        async with self._sem:
            ctx.event("scene_started", self.stage, n)
            await self.step.make(n, scene)
        ctx.event("scene_done", self.stage, n, **stage_usage(scene, self.stage))


def fail_scene(track: StageTrack, n: int, exc: BaseException) -> None:
    """Scene ``n`` failed this stage: note which scene, tell, and count it."""
    add_scene_context(exc, n, track.stage)
    track.step.ctx.event("scene_failed", track.stage, n, reason=error_text(exc), error=describe(exc))
    track.finish(n, exc)


DONE, SKIPPED, FAILED = "done", "skipped", "failed"


async def _step(track: StageTrack, n: int, scene: Scene) -> str:
    """Scene ``n`` through one stage: DONE (made or cached), SKIPPED (not selected) or FAILED."""
    await track.gate.wait()
    step, ctx = track.step, track.step.ctx
    try:
        problem = step.blocked(n, scene)
        if problem is not None:
            if not ctx.selected(n):
                track.finish(n)  # --scene N: the other scenes' inputs were not made in this run
                return SKIPPED
            raise AssetMissingError(problem)
        if step.cached(n, scene):
            track.finish(n)
            return DONE
        if not ctx.selected(n):
            track.finish(n)
            return SKIPPED
        await track.run(n, scene)
    except Exception as exc:  # noqa: BLE001 - collected; raised after every scene had its chance
        fail_scene(track, n, exc)
        return FAILED
    track.finish(n)
    return DONE


async def _visual(tracks: dict[str, StageTrack], n: int, scene: Scene) -> None:
    """Scene ``n``'s image, then its motion as soon as the image exists."""
    image, motion = tracks.get("image"), tracks.get("motion")
    outcome = DONE if image is None else await _step(image, n, scene)
    if motion is None:
        return
    if outcome == DONE:
        await _step(motion, n, scene)
        return
    await motion.gate.wait()
    if outcome == FAILED:
        motion.step.ctx.event("scene_failed", "motion", n, reason="its image failed",
                              error={"type": "upstream", "message": "its image failed", "retryable": False})
    motion.finish(n)


async def _chain(tracks: dict[str, StageTrack], n: int, scene: Scene) -> None:
    parts: list[Awaitable[Any]] = []
    if "audio" in tracks:
        parts.append(_step(tracks["audio"], n, scene))
    if "image" in tracks or "motion" in tracks:
        parts.append(_visual(tracks, n, scene))
    await gather_all(*parts)


async def run_chains(ctx: RunContext, scenes: list[Scene], steps: list[Step[Any, Any]], limits: dict[str, int]) -> None:
    """Run every scene's chain through ``steps`` (in stage order); raise the failures after all are done."""
    tracks = {s.stage: StageTrack(s, len(scenes), limits[s.stage]) for s in steps}
    order = list(tracks.values())
    if ctx.settings.sequential:
        for before, after in zip(order, order[1:]):
            before.next_track = after
        order[0].open()
    else:
        for t in order:
            t.open()
    await gather_all(*(_chain(tracks, n, s) for n, s in enumerate(scenes, 1)))
    errors = [raise_failures(t.stage, t.failures) for t in order if t.failures]
    if errors:
        first = errors[0]  # stage order: narration's error first, the others named after it
        for other in errors[1:]:
            first.add_note("also: " + error_text(other).splitlines()[0])
        raise first


def raise_failures(stage: str, failures: list[tuple[int, BaseException]]) -> BaseException:
    """The first failure (by scene) of a stage, noting the other failed scenes.

    Scenes that failed for the same reason are listed once ("scenes 2, 3, 4 the same
    way"), so an unreachable service gives one line, not one per scene.
    """
    failures = sorted(failures, key=lambda t: t[0])
    first = failures[0][1]
    if len(failures) > 1:
        def reason(e: BaseException) -> str:
            return (str(e) or type(e).__name__).splitlines()[0]

        first_reason = reason(first)
        same = [n for n, e in failures[1:] if reason(e) == first_reason]
        other = [f"scene {n}: {reason(e)}" for n, e in failures[1:] if reason(e) != first_reason]
        parts = [f"{stage}: {len(failures)} scenes failed"]
        if same:
            parts.append(f"scene{'s' if len(same) > 1 else ''} {', '.join(map(str, same))} the same way")
        first.add_note("; ".join(parts + other))
    return first
