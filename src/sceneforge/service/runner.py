"""Running one topic's job with the library: a run, a re-roll, a preview, or the final cut.

Nothing here decides what to remake: a job is always :meth:`Engine.run_topic` over
the topic's ``scenes.json`` (so after an edit the cache remakes exactly what the edit
invalidates), with the topic's own options, or for a re-roll with
:func:`reroll_settings` (that scene and stage, forced). A preview renders in a
thread under the topic's lock, and stops between frames when the job is cancelled; the final cut
(:func:`sceneforge.compose.compose_topic`) likewise, its ffmpeg ended when the job is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ..cache import WorkflowCache
from ..config import Settings
from ..errors import ConfigError, JobInterruptedError
from ..events import EventSink
from ..layout import TopicLayout
from ..lock import topic_lock
from ..pipeline import Engine, aplan_run, write_scenes_json
from ..pipeline.context import drop_fields, set_fields
from ..pipeline.topics import load_topic, pin_seed, reroll_settings, restore_take, show_current
from ..takes import PIN_FIELD
from .files import file_url
from .models import JobSpec
from .options import job_settings

__all__ = ["run_job", "take_marker", "undo_reroll", "Note"]

#: Tell the topic's listeners something the service did: ``note(kind, data)``.
Note = Callable[[str, dict[str, Any]], None]


def take_marker(layout: TopicLayout, stage: str, scene: int) -> str | None:
    """What identifies the asset scene ``scene`` has now for ``stage`` (its take, else its record); None: none."""
    hit = WorkflowCache(layout).current(stage, scene)
    if hit is None:
        return None
    take = hit.meta.get("take")
    return take if isinstance(take, str) else f"record:{hit.fingerprint}"


def job_run_settings(base: Settings, options: dict[str, Any], job: JobSpec, layout: TopicLayout, *,
                     resumed: bool) -> Settings:
    """The settings a job runs with.

    A resumed re-roll is forced again only while the asset it was to replace is still
    current: once that was replaced, the re-roll's own job is journaled (or done), and a
    forced run would forget the journal and render it a second time.
    """
    settings = job_settings(base, options)
    if job.kind != "regenerate":
        return settings
    if job.scene is None or job.stage is None:
        raise ConfigError("a re-roll job without its scene and stage")
    settings = reroll_settings(settings, job.scene, job.stage)
    if resumed and take_marker(layout, job.stage, job.scene) != job.take_before:
        settings = settings.model_copy(update={"force": False})
    return settings


async def run_job(engine: Engine, base: Settings, layout: TopicLayout, options: dict[str, Any], job: JobSpec, *,
                  emit: EventSink, note: Note, resumed: bool = False) -> None:
    """Run ``job`` on the topic in ``layout``; raises what the run raised."""
    if job.kind in ("preview", "compose"):
        await run_render(layout, note, job.kind)
        return
    settings = job_run_settings(base, options, job, layout, resumed=resumed)
    if job.kind == "regenerate" and job.scene is not None and job.stage is not None:
        await asyncio.to_thread(_pin, layout, job.scene, job.stage, job.seed)
    sf = await asyncio.to_thread(load_topic, layout)
    plan = await aplan_run([sf.state()], settings, base=layout.root)  # the stages' own checks (a prompt ...)
    await engine.run_topic(plan.topics[0], settings=settings, emit=emit)


def _pin(layout: TopicLayout, n: int, stage: str, seed: int | None) -> None:
    with topic_lock(layout, wait=30):
        sf = load_topic(layout)
        pin_seed(sf, n, stage, seed)
        write_scenes_json(sf, layout)


def undo_reroll(layout: TopicLayout, job: JobSpec) -> bool:
    """After a re-roll that was cancelled or failed before it made its asset: the take it was to
    replace is current again, the scene's fields point at what is current (the run dropped them)
    and its seed pin is as it was. False when there was nothing to undo (not a re-roll, or it
    made its asset: that is the scene's now)."""
    if job.kind != "regenerate" or job.scene is None or job.stage is None:
        return False
    n, stage = job.scene, job.stage
    marker = take_marker(layout, stage, n)
    if marker is not None and marker != job.take_before:
        return False
    if marker is None and job.take_before is not None and not job.take_before.startswith("record:"):
        restore_take(layout, n, stage, job.take_before, pair=False)
    with topic_lock(layout, wait=30):
        sf = load_topic(layout)
        scene = sf.scenes[n - 1]
        for shown in (stage, "motion") if stage == "image" else (stage,):
            show_current(layout, scene, n, shown)
        if job.pin_before is not None:
            set_fields(scene, **{PIN_FIELD[stage]: job.pin_before})
        elif stage == "image":
            drop_fields(scene, "seed")
        elif stage == "motion" and scene.motion_frames_path is None:
            drop_fields(scene, "motion_seed")  # the failed job's pin; beside frames it is their record
        write_scenes_json(sf, layout)
    return True


def _render(layout: TopicLayout, stop: threading.Event) -> dict[str, Any]:
    from ..preview import make_contact_sheet, make_preview  # imported here: numpy, Pillow and ffmpeg are heavy

    def on_progress(done: int, total: int) -> None:
        if stop.is_set():
            raise JobInterruptedError("the preview was cancelled")

    with topic_lock(layout, wait=30):
        result = make_preview(layout.root, on_progress=on_progress)
        sheet = make_contact_sheet(layout.root)
    urls = {"preview": file_url(layout.slug, result.path.name), "contact_sheet": file_url(layout.slug, sheet.name)}
    return {"urls": urls, "duration": round(result.duration, 3)}


def _compose(layout: TopicLayout, stop: threading.Event) -> dict[str, Any]:
    from ..compose import compose_topic  # imported here: Pillow and ffmpeg are heavy

    with topic_lock(layout, wait=30):
        result = compose_topic(layout.root, cancel=stop)
    urls = {"final": file_url(layout.slug, result.path.name), "cover": file_url(layout.slug, result.cover.name)}
    return {"urls": urls, "duration": round(result.duration, 3), "captions": list(result.captions)}


async def run_render(layout: TopicLayout, note: Note, kind: str = "preview") -> None:
    """Render in a thread: ``preview.mp4`` and ``contact_sheet.png`` (``preview_done``), or ``final.mp4`` and
    ``cover.jpg`` (``compose``: ``compose_done``); a cancel stops the encode (between frames, or its ffmpeg)."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(_compose if kind == "compose" else _render, layout, stop))
    try:
        made = await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await task  # the thread ends at its next frame; the lock and the temporary file go with it
        raise
    note(f"{kind}_done", made)
