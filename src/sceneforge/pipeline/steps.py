"""One scene's work in one stage: use the cache, or generate with retry and record.

A :class:`Step` is made per (topic, stage). Its ``request`` says what the backend
is asked for; the cache key is the stage plus the backend's ``cache_key(request)``.
``cached`` applies a valid record to the scene; ``make`` generates under the stage's
retry policy, puts the files in place, records them, then lets the backend forget
its resumable state. Steps know nothing of servers or prompt ids.
"""

from __future__ import annotations

import os
import secrets
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ..backend import Backend, KeyedRequest
from ..cache import CacheHit, file_digest, fingerprint
from ..errors import AssetMissingError
from ..events import Reporter
from ..fsutil import PART_SUFFIX, atomic_write_bytes, replace_dir
from ..images.base import ImageBackend, ImageRequest
from ..layout import TopicLayout
from ..motion.base import MotionBackend, MotionRequest
from ..retry import RetryPolicy
from ..scenes import Scene
from ..takes import STAGE_INPUTS, new_take_meta
from ..tts.base import SpeechRequest, TTSBackend, format_srt
from ..tts.words import words_path, write_words
from .context import RunContext, drop_fields, set_fields
from .usage import set_usage

__all__ = ["Step", "Outcome", "AudioStep", "ImageStep", "MotionStep", "STEPS", "motion_input_problem"]

B = TypeVar("B", bound=Backend[Any])  # the stage's backend kind
R = TypeVar("R", bound=KeyedRequest)  # the request that backend kind serves


@dataclass
class Outcome:
    """A finished generation: the files now in place and the scene fields to set and record."""

    files: list[Path]
    fields: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()  # stage fields this result does not have (no subtitles, no video)


class Step(ABC, Generic[B, R]):
    """One stage's per-scene logic for one topic run: backend kind ``B``, request type ``R``."""

    stage: ClassVar[str]

    def __init__(self, ctx: RunContext, backend: B) -> None:
        self.ctx = ctx
        self.backend = backend

    @property
    @abstractmethod
    def policy(self) -> RetryPolicy:
        """The stage's retry schedule."""

    @abstractmethod
    def request(self, n: int, scene: Scene) -> R:
        """What the backend is asked for, for scene ``n``."""

    @staticmethod
    @abstractmethod
    def scene_fields(layout: TopicLayout, n: int, files: list[Path], fields: dict[str, Any]) -> dict[str, Any]:
        """The scene fields of an asset made of ``files`` with its recorded ``fields`` (paths from the layout:
        the out folder may have moved since it was recorded)."""

    def apply(self, n: int, scene: Scene, hit: CacheHit) -> None:
        """Set the scene's fields from a valid cache record."""
        set_fields(scene, **self.scene_fields(self.ctx.layout, n, hit.files, set_usage(scene, self.stage, hit.fields)))

    @abstractmethod
    async def attempt(self, n: int, scene: Scene, request: R, report: Reporter) -> Outcome:
        """One try at generating scene ``n``'s asset, files put in place."""

    def blocked(self, n: int, scene: Scene) -> str | None:
        """Why scene ``n`` cannot start this stage (its input is missing), or None."""
        return None

    def key(self, request: R) -> str:
        """The cache key of ``request``: the stage plus the backend's ``cache_key``."""
        return fingerprint({"stage": self.stage, **self.backend.cache_key(request)})

    def pin(self, scene: Scene) -> tuple[str, int] | None:
        """``(recorded field, value)`` when the scene pins this stage's seed."""
        return None

    def made_from(self, scene: Scene) -> str | None:
        """The sha256 of the asset this stage's asset is made from (motion: the image), kept with its take."""
        return None

    def lookup(self, n: int, scene: Scene) -> CacheHit | None:
        """Scene ``n``'s valid cache record for what it asks now, or None."""
        hit = self.ctx.cache.lookup(self.stage, n, self.key(self.request(n, scene)))
        pin = self.pin(scene)
        if hit is not None and pin is not None and hit.fields.get(pin[0]) != pin[1]:
            return None  # made with another seed than the one now pinned
        return hit

    def cached(self, n: int, scene: Scene) -> bool:
        """Apply a valid cached asset to the scene (``scene_cached``); never when forced."""
        if self.ctx.forced(n):
            return False
        hit = self.lookup(n, scene)
        if hit is None:
            return False
        self.apply(n, scene, hit)
        self.ctx.event("scene_cached", self.stage, n)
        return True

    def restore(self, n: int, scene: Scene) -> None:
        """Fill in a stage this run skips from a valid record, quietly (``--stages`` without it)."""
        if self.blocked(n, scene) is None:
            hit = self.lookup(n, scene)
            if hit is not None:
                self.apply(n, scene, hit)

    async def make(self, n: int, scene: Scene) -> None:
        """Generate scene ``n``'s asset with retry, record it and set the scene's fields."""
        ctx = self.ctx
        request = self.request(n, scene)
        key = self.key(request)
        ctx.takes.keep(self.stage, n)  # the asset about to be replaced stays a take
        ctx.cache.invalidate(self.stage, n)
        if ctx.forced(n):
            self.backend.forget(ctx.layout, n)  # a re-roll must not re-attach to the previous job
        report = ctx.reporter(self.stage, n)
        outcome = await ctx.retry(self.stage, n, self.policy, lambda k: self.attempt(n, scene, request, report))
        meta = new_take_meta({name: getattr(scene, name) for name in STAGE_INPUTS[self.stage]},
                             made_from=self.made_from(scene))
        ctx.cache.record(self.stage, n, key, outcome.files, outcome.fields, meta)
        ctx.usage.add(self.stage, outcome.fields)
        self.backend.forget(ctx.layout, n)
        drop_fields(scene, *outcome.dropped)
        set_fields(scene, **self.scene_fields(ctx.layout, n, outcome.files, set_usage(scene, self.stage, outcome.fields)))


def _check_written(path: Path, n: int, what: str) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        raise AssetMissingError(f"scene {n}: {what} {path} was not created")


class AudioStep(Step[TTSBackend, SpeechRequest]):
    """Narration: ``audio_scene_N.mp3`` and, when the engine gives timings, ``audio_scene_N.srt``
    (and with word timings ``audio_scene_N.words.json``, for word-by-word captions)."""

    stage = "audio"

    @property
    def policy(self) -> RetryPolicy:
        return self.ctx.settings.audio_retry

    def request(self, n: int, scene: Scene) -> SpeechRequest:
        return SpeechRequest(n, scene.script, self.ctx.layout.audio_path(n), voice=scene.voice, rate=scene.rate)

    @staticmethod
    def scene_fields(layout: TopicLayout, n: int, files: list[Path], fields: dict[str, Any]) -> dict[str, Any]:
        out = {"audio_path": str(layout.audio_path(n)), **fields}
        if "subtitle_path" in fields:
            out["subtitle_path"] = str(layout.subtitle_path(n))
        return out

    async def attempt(self, n: int, scene: Scene, request: SpeechRequest, report: Reporter) -> Outcome:
        res = await self.backend.synthesize(request, report)
        _check_written(request.dest, n, "audio file")
        outcome = Outcome([request.dest], {"audio_duration": round(float(res.duration), 3)})
        if res.cues:
            srt = self.ctx.layout.subtitle_path(n)
            atomic_write_bytes(srt, format_srt(res.cues).encode("utf-8"))
            outcome.files.append(srt)
            outcome.fields["subtitle_path"] = str(srt)
        else:
            outcome.dropped = ("subtitle_path",)
        if res.words:
            outcome.files.append(write_words(request.dest, res.words))
        else:  # timings of an earlier narration must not outlive it (the take kept them)
            words_path(request.dest).unlink(missing_ok=True)
        return outcome


class ImageStep(Step[ImageBackend, ImageRequest]):
    """An image per scene: ``image_scene_N.png`` and the seed used."""

    stage = "image"

    @property
    def policy(self) -> RetryPolicy:
        return self.ctx.settings.image_retry

    def request(self, n: int, scene: Scene) -> ImageRequest:
        reference = scene.reference_image or self.ctx.reference
        return ImageRequest(n, scene.image_prompt or "", self.ctx.layout.image_path(n),
                            negative=scene.negative_prompt, seed=scene.seed, workflow=scene.workflow,
                            reference=Path(reference) if reference else None, voice=scene.voice)

    def pin(self, scene: Scene) -> tuple[str, int] | None:
        return None if scene.seed is None else ("image_seed", scene.seed)

    @staticmethod
    def scene_fields(layout: TopicLayout, n: int, files: list[Path], fields: dict[str, Any]) -> dict[str, Any]:
        return {"image_path": str(layout.image_path(n)), **fields}

    async def attempt(self, n: int, scene: Scene, request: ImageRequest, report: Reporter) -> Outcome:
        res = await self.backend.generate(request, report)
        _check_written(request.dest, n, "image file")
        return Outcome([request.dest], dict(res.fields))


def motion_input_problem(n: int, scene: Scene) -> str | None:
    """Why scene ``n`` cannot start motion (its image is missing), or None."""
    if not scene.image_path:
        return f"scene {n}: image_path is not set; run the image stage first"
    if not Path(scene.image_path).is_file():
        return f"scene {n}: image_path {scene.image_path} does not exist"
    return None


class MotionStep(Step[MotionBackend, MotionRequest]):
    """Motion frames per scene: ``motion_scene_N/frame_0001.png`` ... (and a video when one is made)."""

    stage = "motion"

    @property
    def policy(self) -> RetryPolicy:
        return self.ctx.settings.motion_retry

    def blocked(self, n: int, scene: Scene) -> str | None:
        return motion_input_problem(n, scene)

    def made_from(self, scene: Scene) -> str | None:
        try:
            return file_digest(Path(scene.image_path)) if scene.image_path else None
        except OSError:
            return None

    def pin(self, scene: Scene) -> tuple[str, int] | None:
        return None if scene.motion_seed_pin is None else ("motion_seed", scene.motion_seed_pin)

    def request(self, n: int, scene: Scene, work_dir: Path | None = None) -> MotionRequest:
        prompt = scene.motion_prompt if scene.motion_prompt and scene.motion_prompt.strip() else scene.image_prompt
        return MotionRequest(n, Path(scene.image_path or ""), prompt or "", work_dir or self.ctx.layout.motion_dir(n),
                             seed=scene.motion_seed_pin, workflow=scene.motion_workflow)

    @staticmethod
    def scene_fields(layout: TopicLayout, n: int, files: list[Path], fields: dict[str, Any]) -> dict[str, Any]:
        folder = layout.motion_dir(n)
        prefix = str(folder) + os.sep
        frames = sorted(prefix + p.name for p in files if p.parent.name == folder.name)
        out = {"motion_frames_path": frames, **fields}
        video = next((p for p in files if p.parent.name != folder.name and p.name.startswith(f"motion_scene_{n}.")),
                     None)
        if video is not None:
            out["motion_video_path"] = str(layout.root / video.name)
        else:
            out.pop("motion_video_path", None)
        return out

    async def attempt(self, n: int, scene: Scene, request: MotionRequest, report: Reporter) -> Outcome:
        lay = self.ctx.layout
        lay.root.mkdir(parents=True, exist_ok=True)
        work_dir = lay.root / f".motion_scene_{n}.{secrets.token_hex(4)}{PART_SUFFIX}"
        work_dir.mkdir()
        try:
            res = await self.backend.generate(self.request(n, scene, work_dir), report)
            if not res.frames or any(not f.is_file() or f.stat().st_size == 0 for f in res.frames):
                raise AssetMissingError(f"scene {n}: motion frames were not created")
            outcome = Outcome([], {"motion_fps": res.fps, **res.fields})
            if res.video is not None and res.video.is_file():
                video = lay.motion_video_path(n).with_suffix(res.video.suffix or ".mp4")  # keep .webm a webm
                res.video.replace(video)
                outcome.files.append(video)
                outcome.fields["motion_video_path"] = str(video)
            else:
                outcome.dropped = ("motion_video_path",)
            names = [f.name for f in res.frames]
            replace_dir(work_dir, lay.motion_dir(n))
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        outcome.files[:0] = [lay.motion_dir(n) / name for name in names]
        return outcome



#: The step class of each stage, in the order the original system runs them.
STEPS: dict[str, type[Step[Any, Any]]] = {"audio": AudioStep, "image": ImageStep, "motion": MotionStep}
