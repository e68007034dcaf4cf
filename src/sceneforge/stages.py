"""The three stages of the seed, each over all scenes, with per-scene cache and retry.

Each stage is split into a per-scene *job* (``audio_job``, ``image_job``,
``motion_job``) so the pipeline can overlap stages scene by scene, and a
*stage runner* that runs every scene's job with bounded concurrency. One
failing scene is retried on its own (the seed's schedule) and never makes the
others regenerate; after every scene has had its chance, the runner raises.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .cache import CacheHit, WorkflowCache, file_digest, fingerprint
from .config import Settings
from .errors import AssetMissingError, SceneValidationError, describe
from .fsutil import PART_SUFFIX, atomic_write_bytes
from .images.base import ImageBackend, image_registry
from .journal import JobJournal
from .motion.base import MotionBackend, motion_registry
from .run_context import (
    STAGE_FIELDS,
    RunContext,
    drop_fields,
    forget_input_assets,
    gather_scenes,
    raise_failures,
    scene_job,
    set_fields,
)
from .scenes import Scene
from .tts.base import TTSBackend, format_srt, tts_registry

__all__ = [
    "RunContext",
    "audio_job",
    "image_job",
    "motion_job",
    "run_audio_stage",
    "run_image_stage",
    "run_motion_stage",
    "check_prompts",
    "check_motion_inputs",
    "motion_input_problem",
    "raise_failures",
    "restore_cached",
    "forget_input_assets",
    "STAGE_FIELDS",
    "ensure_started",
    "start_or_fail_scenes",
    "job_limit",
    "build_tts",
    "build_image_backend",
    "build_motion_backend",
]


# --------------------------------------------------------------------------- audio
def audio_fingerprint(backend: TTSBackend, scene: Scene) -> str:
    return fingerprint({"stage": "audio", "text": scene.script, **backend.fingerprint()})


async def audio_job(ctx: RunContext, backend: TTSBackend, n: int, scene: Scene) -> None:
    """Narration for one scene: cache check, synthesis with retry, SRT, record."""
    lay, cache = ctx.layout, ctx.cache
    dest = lay.audio_path(n)
    fp = audio_fingerprint(backend, scene)
    if not ctx.forced(n):
        hit = cache.lookup(WorkflowCache.STAGE_AUDIO, n, fp)
        if hit is not None:
            set_fields(scene, audio_path=str(dest), **hit.fields)
            if "subtitle_path" in hit.fields:
                scene.subtitle_path = str(lay.subtitle_path(n))  # type: ignore[attr-defined]
            ctx.event("scene_cached", "audio", n)
            return
    if not ctx.selected(n):
        return

    async def work() -> None:
        cache.invalidate(WorkflowCache.STAGE_AUDIO, n)

        async def attempt(k: int):  # type: ignore[no-untyped-def]
            res = await backend.synthesize(scene.script, dest)
            if not dest.is_file() or dest.stat().st_size == 0:
                raise AssetMissingError(f"scene {n}: audio file {dest} was not created")
            return res

        res = await ctx.retry("audio", n, ctx.settings.audio_retry, attempt)
        files = [dest]
        fields: dict[str, Any] = {"audio_duration": round(float(res.duration), 3)}
        if res.cues:
            srt = lay.subtitle_path(n)
            atomic_write_bytes(srt, format_srt(res.cues).encode("utf-8"))
            files.append(srt)
            fields["subtitle_path"] = str(srt)
        else:
            drop_fields(scene, "subtitle_path")
        cache.record(WorkflowCache.STAGE_AUDIO, n, fp, files, fields)
        set_fields(scene, audio_path=str(dest), **fields)

    await scene_job(ctx, "audio", n, work)


# --------------------------------------------------------------------------- image
def check_prompts(scenes: list[Scene]) -> None:
    """The seed's 'missing prompt → ValueError', before any job is submitted."""
    problems = [
        f"scene {n}: image_prompt is {'missing' if s.image_prompt is None else 'empty'}"
        for n, s in enumerate(scenes, 1)
        if not isinstance(s.image_prompt, str) or not s.image_prompt.strip()
    ]
    if problems:
        raise SceneValidationError(problems)


def image_fingerprint(backend: ImageBackend, scene: Scene) -> str:
    return fingerprint({"stage": "image", "prompt": scene.image_prompt, **backend.fingerprint()})


def _use_cached(ctx: RunContext, stage: str, n: int, fp: Callable[[], str], apply: Callable[[CacheHit], None]) -> bool:
    """Apply a valid cache record to scene ``n``; True when nothing needs generating
    (also for a scene ``--scene`` did not select)."""
    if ctx.forced(n):
        return False
    hit = ctx.cache.lookup(stage, n, fp())
    if hit is None:
        return not ctx.selected(n)
    apply(hit)
    ctx.event("scene_cached", stage, n)
    return True


def image_cached(ctx: RunContext, backend: ImageBackend, n: int, scene: Scene) -> bool:
    """Apply a valid cached image to the scene; True when nothing needs generating."""
    return _use_cached(
        ctx, WorkflowCache.STAGE_IMAGE, n, lambda: image_fingerprint(backend, scene),
        lambda hit: set_fields(scene, image_path=str(ctx.layout.image_path(n)), **hit.fields),
    )


async def image_job(ctx: RunContext, backend: ImageBackend, n: int, scene: Scene) -> None:
    """One scene's image (the cache was checked by :func:`image_cached`)."""
    dest = ctx.layout.image_path(n)
    fp = image_fingerprint(backend, scene)
    assert scene.image_prompt is not None

    journal = JobJournal(ctx.layout.root, "image", n)

    async def work() -> None:
        ctx.cache.invalidate(WorkflowCache.STAGE_IMAGE, n)
        if ctx.forced(n):
            journal.clear()  # a re-roll must not resume the previous job

        async def attempt(k: int):  # type: ignore[no-untyped-def]
            res = await backend.generate(n, scene.image_prompt or "", dest)
            if not dest.is_file() or dest.stat().st_size == 0:
                raise AssetMissingError(f"scene {n}: image file {dest} was not created")
            return res

        res = await ctx.retry("image", n, ctx.settings.image_retry, attempt)
        ctx.cache.record(WorkflowCache.STAGE_IMAGE, n, fp, [dest], res.fields)
        journal.clear()
        set_fields(scene, image_path=str(dest), **res.fields)

    await scene_job(ctx, "image", n, work)


# --------------------------------------------------------------------------- motion
def motion_prompt(scene: Scene) -> str:
    extra = scene.__pydantic_extra__ or {}
    mp = extra.get("motion_prompt")
    return mp if isinstance(mp, str) and mp.strip() else (scene.image_prompt or "")


def motion_input_problem(n: int, scene: Scene) -> str | None:
    """Why scene ``n`` cannot start motion, or None."""
    if not scene.image_path:
        return f"scene {n}: image_path is not set; run the image stage first"
    if not Path(scene.image_path).is_file():
        return f"scene {n}: image_path {scene.image_path} does not exist"
    return None


def check_motion_inputs(scenes: list[Scene]) -> None:
    """The seed's 'motion input image missing → FileNotFoundError', before any job."""
    problems = [p for n, s in enumerate(scenes, 1) if (p := motion_input_problem(n, s))]
    if problems:
        raise AssetMissingError("\n".join(problems))


def motion_fingerprint(backend: MotionBackend, scene: Scene) -> str:
    image = Path(scene.image_path or "")
    return fingerprint(
        {"stage": "motion", "image": file_digest(image), "prompt": motion_prompt(scene), **backend.fingerprint()}
    )


def _motion_fields(ctx: RunContext, n: int, hit: Any) -> dict[str, Any]:
    """Recorded motion fields, with the video path rebuilt from the layout (the out folder may have moved)."""
    fields = dict(hit.fields)
    video = next((p for p in hit.files if p.parent == ctx.layout.root and p.name.startswith(f"motion_scene_{n}.")), None)
    if "motion_video_path" in fields:
        if video is not None:
            fields["motion_video_path"] = str(video)
        else:
            fields.pop("motion_video_path")
    return fields


def _apply_motion(ctx: RunContext, n: int, scene: Scene, hit: CacheHit) -> None:
    frames = sorted(str(p) for p in hit.files if p.parent == ctx.layout.motion_dir(n))
    set_fields(scene, motion_frames_path=frames, **_motion_fields(ctx, n, hit))


def motion_cached(ctx: RunContext, backend: MotionBackend, n: int, scene: Scene) -> bool:
    """Apply valid cached motion frames to the scene; True when nothing needs generating."""
    return _use_cached(
        ctx, WorkflowCache.STAGE_MOTION, n, lambda: motion_fingerprint(backend, scene),
        lambda hit: _apply_motion(ctx, n, scene, hit),
    )


def _replace_dir(src: Path, dest: Path) -> None:
    """Move a finished frame folder into place, replacing an older one."""
    if dest.exists():
        trash = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.old{PART_SUFFIX}")
        dest.rename(trash)
        src.rename(dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        src.rename(dest)


async def motion_job(ctx: RunContext, backend: MotionBackend, n: int, scene: Scene) -> None:
    """One scene's motion frames, written to a temporary folder and renamed into place."""
    lay = ctx.layout
    fp = motion_fingerprint(backend, scene)
    image = Path(scene.image_path or "")
    prompt = motion_prompt(scene)

    journal = JobJournal(lay.root, "motion", n)

    async def work() -> None:
        ctx.cache.invalidate(WorkflowCache.STAGE_MOTION, n)
        if ctx.forced(n):
            journal.clear()
        lay.root.mkdir(parents=True, exist_ok=True)

        async def attempt(k: int):  # type: ignore[no-untyped-def]
            work_dir = lay.root / f".motion_scene_{n}.{secrets.token_hex(4)}{PART_SUFFIX}"
            work_dir.mkdir()
            try:
                res = await backend.generate(n, image, prompt, work_dir)
                if not res.frames or any(not f.is_file() or f.stat().st_size == 0 for f in res.frames):
                    raise AssetMissingError(f"scene {n}: motion frames were not created")
                return work_dir, res
            except BaseException:
                shutil.rmtree(work_dir, ignore_errors=True)
                raise

        work_dir, res = await ctx.retry("motion", n, ctx.settings.motion_retry, attempt)
        fields: dict[str, Any] = {"motion_fps": res.fps, **res.fields}
        files: list[Path] = []
        if res.video is not None and res.video.is_file():
            video_dest = lay.motion_video_path(n).with_suffix(res.video.suffix or ".mp4")  # keep .webm a webm
            res.video.replace(video_dest)
            files.append(video_dest)
            fields["motion_video_path"] = str(video_dest)
        else:
            drop_fields(scene, "motion_video_path")
        dest_dir = lay.motion_dir(n)
        names = [f.name for f in res.frames]
        _replace_dir(work_dir, dest_dir)
        frames = [dest_dir / name for name in names]
        ctx.cache.record(WorkflowCache.STAGE_MOTION, n, fp, frames + files, fields)
        journal.clear()
        set_fields(scene, motion_frames_path=[str(f) for f in frames], **fields)

    await scene_job(ctx, "motion", n, work)


# --------------------------------------------------------------------------- stages not run
async def restore_cached(ctx: RunContext, scenes: list[Scene], stage: str) -> None:
    """Fill in a stage's fields from valid cache records without generating anything.

    Used for the stages a run skips (``--stages image``), so ``scenes.json`` keeps the
    narration and motion that are still valid on disk. A record counts only when its
    fingerprint matches the current settings and its files are complete.
    """
    settings, lay, cache = ctx.settings, ctx.layout, ctx.cache
    if not (cache.layout.state_dir / stage).is_dir():
        return  # nothing was ever recorded for this stage
    try:
        backend: Any = {"audio": build_tts, "image": build_image_backend, "motion": build_motion_backend}[stage](settings)
    except Exception:  # noqa: BLE001 - an unusable backend setting just means nothing to restore
        return
    try:
        for n, scene in enumerate(scenes, 1):
            if stage == "audio":
                hit = cache.lookup(stage, n, audio_fingerprint(backend, scene))
                if hit is not None:
                    set_fields(scene, audio_path=str(lay.audio_path(n)), **hit.fields)
            elif stage == "image" and scene.image_prompt:
                hit = cache.lookup(stage, n, image_fingerprint(backend, scene))
                if hit is not None:
                    set_fields(scene, image_path=str(lay.image_path(n)), **hit.fields)
            elif stage == "motion" and motion_input_problem(n, scene) is None:
                hit = cache.lookup(stage, n, motion_fingerprint(backend, scene))
                if hit is not None:
                    _apply_motion(ctx, n, scene, hit)
    finally:
        await backend.aclose()


# --------------------------------------------------------------------------- stage runners
def build_tts(settings: Settings) -> TTSBackend:
    return tts_registry.get(settings.tts_engine).from_settings(settings)


def build_image_backend(settings: Settings) -> ImageBackend:
    return image_registry.get(settings.image_engine).from_settings(settings)


def build_motion_backend(settings: Settings) -> MotionBackend:
    return motion_registry.get(settings.motion_engine).from_settings(settings)


async def ensure_started(backend: ImageBackend | MotionBackend) -> None:
    """Run a backend's health check once, however many stages, scenes or topics share it.

    A failed check is remembered and raised again at once: scenes waiting on it do not
    each repeat a slow connection attempt to a dead server.
    """
    lock = backend.__dict__.setdefault("_sf_start_lock", asyncio.Lock())
    async with lock:
        failed = backend.__dict__.get("_sf_start_error")
        if failed is not None:
            raise failed
        if not backend.__dict__.get("_sf_started"):
            try:
                await backend.start()
            except Exception as exc:
                backend.__dict__["_sf_start_error"] = exc
                raise
            backend.__dict__["_sf_started"] = True


async def start_or_fail_scenes(ctx: RunContext, backend: Any, stage: str, scenes: list[int]) -> None:
    """The health check; when it fails, every scene still to do ends in a ``scene_failed`` event."""
    try:
        await ensure_started(backend)
    except Exception as exc:
        for n in scenes:
            ctx.event("scene_failed", stage, n, reason=str(exc), error=describe(exc))
        raise


def job_limit(backend: ImageBackend | MotionBackend, settings: Settings) -> int:
    """How many of a backend's jobs may run at once: 1 in the seed's order, else the backend's own limit."""
    if settings.sequential:
        return 1
    own = getattr(backend, "max_concurrency", None)
    return int(own) if own else settings.image_concurrency


async def run_audio_stage(ctx: RunContext, scenes: list[Scene], backend: TTSBackend | None = None) -> None:
    """Narration for every scene, concurrently (bounded), as the seed does."""
    own = backend is None
    backend = backend or build_tts(ctx.settings)
    ctx.event("stage_started", "audio", total=len(scenes), engine=backend.name)
    try:
        limit = ctx.settings.tts_concurrency or backend.default_concurrency
        failures = await gather_scenes(
            [(n, audio_job(ctx, backend, n, s)) for n, s in enumerate(scenes, 1)], limit
        )
    finally:
        if own:
            await backend.aclose()
    ctx.event("stage_done", "audio", failed=len(failures))
    raise_failures("audio", failures)


async def _run_comfy_like_stage(
    ctx: RunContext, scenes: list[Scene], stage: str, backend: Any, own: bool,
    cached: Callable[..., bool], job: Callable[..., Awaitable[None]],
) -> None:
    """The image and motion stages: cache first, one health check if work remains, then every scene."""
    backend.emit = ctx.emit
    failures: list[tuple[int, BaseException]] = []
    try:
        ctx.event("stage_started", stage, total=len(scenes), engine=backend.name)
        todo = [(n, s) for n, s in enumerate(scenes, 1) if not cached(ctx, backend, n, s)]
        if todo:
            try:
                await start_or_fail_scenes(ctx, backend, stage, [n for n, _ in todo])
            except Exception:
                ctx.event("stage_done", stage, failed=len(todo))
                raise
            jobs = [(n, job(ctx, backend, n, s)) for n, s in todo]
            failures = await gather_scenes(jobs, job_limit(backend, ctx.settings))
    finally:
        if own:
            await backend.aclose()
    ctx.event("stage_done", stage, failed=len(failures))
    raise_failures(stage, failures)


async def run_image_stage(ctx: RunContext, scenes: list[Scene], backend: ImageBackend | None = None) -> None:
    """An image for every scene. Prompts are checked and the server health-checked once, first."""
    check_prompts(scenes)
    be = backend or build_image_backend(ctx.settings)
    await _run_comfy_like_stage(ctx, scenes, "image", be, backend is None, image_cached, image_job)


async def run_motion_stage(ctx: RunContext, scenes: list[Scene], backend: MotionBackend | None = None) -> None:
    """Motion frames for every scene, when motion is enabled; otherwise scenes pass through."""
    if not ctx.settings.motion_enabled:
        return
    check_motion_inputs(scenes)
    be = backend or build_motion_backend(ctx.settings)
    await _run_comfy_like_stage(ctx, scenes, "motion", be, backend is None, motion_cached, motion_job)
