"""What every per-scene step of one topic's run shares: settings, layout, cache, events, time.

:class:`RunContext` is made once per topic run. It emits events carrying the
topic, hands backends a :class:`~sceneforge.events.Reporter` bound to the topic,
stage and scene, and runs one scene's generation under the stage's retry policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..cache import StageCache
from ..config import Settings
from ..errors import error_text
from ..events import Event, EventKind, EventSink, Reporter, bound_reporter, null_sink
from ..layout import TopicLayout
from ..retry import RetryPolicy, retry_async
from ..scenes import Scene
from ..takes import TakeStore
from .usage import TopicUsage, drop_usage

__all__ = ["RunContext", "Sleep", "set_fields", "drop_fields", "STAGE_FIELDS", "forget_input_assets"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]


@dataclass
class RunContext:
    """One topic's run: where its files go, its cache, its GPU time, its event sink and the injected sleep."""

    settings: Settings
    layout: TopicLayout
    topic: str
    emit: EventSink = null_sink
    sleep: Sleep = asyncio.sleep
    reference: str | None = None  # the topic's reference image (a scene's own wins)
    cache: StageCache = field(init=False)
    takes: TakeStore = field(init=False)
    usage: TopicUsage = field(init=False)  # the topic's GPU time and cost, read once per run

    def __post_init__(self) -> None:
        self.cache = StageCache(self.layout, warn=lambda m: self.event("warning", message=m))
        self.takes = TakeStore(self.cache)
        self.usage = TopicUsage(self.layout.state_dir)

    def event(self, kind: EventKind, stage: str | None = None, scene: int | None = None, **data: Any) -> None:
        """Emit an event of this topic."""
        self.emit(Event(kind=kind, stage=stage, scene=scene, topic=self.topic, data=data))

    def reporter(self, stage: str, scene: int) -> Reporter:
        """The ``report`` callable a backend gets for one scene's call."""
        return bound_reporter(self.emit, topic=self.topic, stage=stage, scene=scene)

    def selected(self, n: int) -> bool:
        """Whether ``--scene`` selects scene ``n`` (every scene when none is given)."""
        only = self.settings.only_scenes
        return only is None or n in only

    def forced(self, n: int) -> bool:
        """Whether scene ``n`` is regenerated even when cached (``--force``)."""
        return self.settings.force and self.selected(n)

    async def retry(self, stage: str, n: int, policy: RetryPolicy, fn: Callable[[int], Awaitable[T]]) -> T:
        """Run one scene's generation with the stage's retry schedule, reporting retries."""

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            self.event("scene_retried", stage, n, attempt=attempt, wait=wait, reason=error_text(exc))

        return await retry_async(fn, policy, sleep=self.sleep, on_retry=on_retry)


def set_fields(scene: Scene, **fields: Any) -> None:
    """Set scene fields (declared or extra)."""
    for k, v in fields.items():
        setattr(scene, k, v)


def drop_fields(scene: Scene, *names: str) -> None:
    """Remove fields from a scene (declared ones become unset, so they leave the output too)."""
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
    "motion": ("motion_frames_path", "motion_fps", "motion_video_path"),
}
# ``motion_seed`` is not among them: given in the input it pins the scene's motion seed (unless it came
# with recorded motion frames: see forget_input_assets).


def forget_input_assets(scenes: list[Scene], settings: Settings, *, only_wanted: bool = False,
                        motion_pin: Callable[[int], int | None] | None = None) -> None:
    """Input paths are never trusted as finished assets: drop the stages' fields before a run
    (every stage's, or with ``only_wanted`` the stages this run makes).

    The one exception is a motion run without the image stage: its input images are the
    scenes' ``image_path`` (read, never written). A ``motion_seed`` that came with recorded
    frames is what made them, not a pin, unless ``motion_pin(n)`` (the pin the frames were
    made with) says the scene had pinned it.
    """
    keep_images = settings.run_motion and not settings.wants("image")
    for n, scene in enumerate(scenes, 1):
        for stage, names in STAGE_FIELDS.items():
            if (stage == "image" and keep_images) or (only_wanted and not settings.wants(stage)):
                continue
            if stage == "motion" and scene.motion_frames_path is not None and scene.motion_seed is not None:
                if motion_pin is None or motion_pin(n) != scene.motion_seed:
                    drop_fields(scene, "motion_seed")  # a record: a forced run re-rolls with a new seed
            drop_fields(scene, *names)
            drop_usage(scene, stage)
