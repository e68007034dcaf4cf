"""What every per-scene job of a run shares: the run context, scene fields, and failure handling.

:class:`RunContext` carries the settings, the topic's layout and cache, the event
sink and the injected sleep. One scene's work runs inside :func:`scene_job`, which
reports started/done/failed; the stage runners collect failures with
:func:`gather_scenes` and raise them with :func:`raise_failures`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .cache import WorkflowCache
from .config import Settings
from .errors import GenerationError, describe
from .events import Event, EventSink, null_sink
from .layout import TopicLayout
from .retry import RetryPolicy, retry_async
from .scenes import Scene

__all__ = [
    "RunContext",
    "STAGE_FIELDS",
    "forget_input_assets",
    "gather_scenes",
    "raise_failures",
    "scene_job",
    "set_fields",
    "drop_fields",
]

T = TypeVar("T")


@dataclass
class RunContext:
    """What every job of one topic needs. Backends may be injected (and are then not closed here)."""

    settings: Settings
    layout: TopicLayout
    topic: str
    emit: EventSink = null_sink
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    cache: WorkflowCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = WorkflowCache(self.layout, warn=lambda m: self.event("warning", message=m))

    def event(self, kind: Any, stage: str | None = None, scene: int | None = None, **data: Any) -> None:
        self.emit(Event(kind=kind, stage=stage, scene=scene, topic=self.topic, data=data))

    def selected(self, n: int) -> bool:
        only = self.settings.only_scenes
        return only is None or n in only

    def forced(self, n: int) -> bool:
        return self.settings.force and self.selected(n)

    async def retry(self, stage: str, n: int, policy: RetryPolicy, fn: Callable[[int], Awaitable[T]]) -> T:
        """Run one scene's generation with the stage's retry schedule, reporting retries."""

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            self.event("scene_retried", stage, n, attempt=attempt, wait=wait, reason=str(exc))

        return await retry_async(fn, policy, sleep=self.sleep, on_retry=on_retry)


def _tag(exc: BaseException, n: int, stage: str) -> BaseException:
    """Make sure an error names its scene and stage (messages only; types are kept)."""
    if isinstance(exc, GenerationError):
        exc.for_scene(n, stage)
    if f"scene {n}" not in str(exc) and len(exc.args) <= 1:
        exc.args = (f"scene {n} ({stage}): {exc}",)
    return exc


async def scene_job(ctx: RunContext, stage: str, n: int, work: Callable[[], Awaitable[None]]) -> None:
    ctx.event("scene_started", stage, n)
    try:
        await work()
    except Exception as exc:
        _tag(exc, n, stage)
        ctx.event("scene_failed", stage, n, reason=str(exc), error=describe(exc))
        raise
    ctx.event("scene_done", stage, n)


def set_fields(scene: Scene, **fields: Any) -> None:
    for k, v in fields.items():
        setattr(scene, k, v)


def drop_fields(scene: Scene, *names: str) -> None:
    """Remove fields from a scene (known ones become unset, so they leave the output too)."""
    extra = scene.__pydantic_extra__ or {}
    for name in names:
        if name in Scene.model_fields:
            setattr(scene, name, None)
            scene.model_fields_set.discard(name)
        else:
            extra.pop(name, None)


#: The fields each stage owns: set only from its cache or a fresh generation, never from the input.
STAGE_FIELDS = {
    "audio": ("audio_path", "audio_duration", "subtitle_path"),
    "image": ("image_path", "image_seed"),
    "motion": ("motion_frames_path", "motion_fps", "motion_seed", "motion_video_path"),
}


def forget_input_assets(scenes: list[Scene], settings: Settings) -> None:
    """Input paths are never trusted as finished assets: drop every stage's fields before a run.

    The one exception is a motion run without the image stage: its input images are the
    scenes' ``image_path`` (read, never written).
    """
    keep_images = settings.run_motion and not settings.wants("image")
    for scene in scenes:
        for stage, names in STAGE_FIELDS.items():
            if stage == "image" and keep_images:
                continue
            drop_fields(scene, *names)


def raise_failures(stage: str, failures: list[tuple[int, BaseException]]) -> None:
    """Raise the first failure (by scene); its message also names the other failed scenes.

    Scenes that failed for the same reason are listed once ("scenes 2, 3, 4 failed the
    same way"), so an unreachable service gives one line, not one per scene.
    """
    if not failures:
        return
    failures.sort(key=lambda t: t[0])
    first = failures[0][1]
    if len(failures) > 1 and len(first.args) <= 1:
        def reason(n: int, e: BaseException) -> str:
            text = (str(e) or type(e).__name__).splitlines()[0]
            return text.replace(f"scene {n} ({stage}): ", "").replace(f"scene {n}: ", "")

        first_reason = reason(*failures[0])
        same = [n for n, e in failures[1:] if reason(n, e) == first_reason]
        other = [f"scene {n}: {reason(n, e)}" for n, e in failures[1:] if reason(n, e) != first_reason]
        parts = [f"{stage}: {len(failures)} scenes failed"]
        if same:
            parts.append(f"scene{'s' if len(same) > 1 else ''} {', '.join(map(str, same))} the same way")
        parts.extend(other)
        first.args = (f"{first}\n" + "; ".join(parts),)
    raise first


async def gather_scenes(
    jobs: list[tuple[int, Awaitable[None]]], limit: int
) -> list[tuple[int, BaseException]]:
    sem = asyncio.Semaphore(limit)

    async def bounded(n: int, job: Awaitable[None]) -> tuple[int, BaseException | None]:
        async with sem:
            try:
                await job
                return n, None
            except Exception as exc:
                return n, exc

    results = await asyncio.gather(*(bounded(n, j) for n, j in jobs))
    return [(n, e) for n, e in results if e is not None]
