"""Running one topic's job with the library: a run, a re-roll, a preview, or the final cut.

Nothing here decides what to remake: a job is always :meth:`Engine.run_topic` over
the topic's ``scenes.json`` (so after an edit the cache remakes exactly what the edit
invalidates), with the topic's own options, or for a re-roll with
:meth:`Topic.reroll_settings` (that scene and stage, forced); the re-roll's rules (its pin,
what it replaces, its undoing) are the topic workspace's (:class:`sceneforge.pipeline.Topic`). A preview renders in a
thread under the topic's lock, and stops between frames when the job is cancelled; the final cut
(:func:`sceneforge.compose.compose_topic`) likewise, its ffmpeg ended when the job is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from .. import EventKind, EventSink, JobInterruptedError, Settings
from ..pipeline import Engine, Topic, aplan_run
from .files import file_url
from .models import JobSpec
from .options import job_settings

__all__ = ["run_job", "undo_reroll", "job_run_settings", "Note"]

#: Tell the topic's listeners something the service did: ``note(kind, data)``.
Note = Callable[[EventKind, dict[str, Any]], None]


def job_run_settings(base: Settings, options: dict[str, Any], job: JobSpec, topic: Topic, *,
                     resumed: bool) -> Settings:
    """The settings a job runs with.

    A resumed re-roll is forced again only while the asset it was to replace is still
    current: once that was replaced, the re-roll's own job is journaled (or done), and a
    forced run would forget the journal and render it a second time.
    """
    settings = job_settings(base, options)
    if job.kind != "regenerate":
        return settings
    reroll = job.reroll()
    settings = Topic.reroll_settings(settings, reroll.scene, reroll.stage)
    if resumed and topic.current(reroll.stage, reroll.scene) != reroll.take_before:
        settings = settings.model_copy(update={"force": False})
    return settings


async def run_job(engine: Engine, base: Settings, topic: Topic, options: dict[str, Any], job: JobSpec, *,
                  emit: EventSink, note: Note, resumed: bool = False) -> None:
    """Run ``job`` on ``topic``; raises what the run raised."""
    if job.kind in ("preview", "compose"):
        await run_render(topic, note, job.kind)
        return
    settings = job_run_settings(base, options, job, topic, resumed=resumed)
    if job.kind == "regenerate":  # the topic as its pin left it, not read again
        sf = await asyncio.to_thread(topic.begin_reroll, job.reroll())
    else:
        sf = await asyncio.to_thread(topic.read)
    plan = await aplan_run([sf.state()], settings, base=topic.root)  # the stages' own checks (a prompt ...)
    await engine.run_topic(plan.topics[0], settings=settings, emit=emit, topic=topic)


def undo_reroll(topic: Topic, job: JobSpec) -> bool:
    """A cancelled or failed re-roll job leaves the scene as it was before it (:meth:`Topic.undo_reroll`)."""
    return job.kind == "regenerate" and topic.undo_reroll(job.reroll())


def _render(topic: Topic, stop: threading.Event) -> dict[str, Any]:
    from ..pipeline import make_contact_sheet, make_preview  # imported here: numpy, Pillow and ffmpeg are heavy

    def on_progress(done: int, total: int) -> None:
        if stop.is_set():
            raise JobInterruptedError("the preview was cancelled")

    with topic.lock(30):
        result = make_preview(topic.root, on_progress=on_progress)
        sheet = make_contact_sheet(topic.root)
    urls = {"preview": file_url(topic.slug, result.path.name), "contact_sheet": file_url(topic.slug, sheet.name)}
    return {"urls": urls, "duration": round(result.duration, 3)}


def _compose(topic: Topic, stop: threading.Event) -> dict[str, Any]:
    from ..pipeline import compose_topic  # imported here: Pillow and ffmpeg are heavy

    with topic.lock(30):
        result = compose_topic(topic.root, cancel=stop)
    urls = {"final": file_url(topic.slug, result.path.name), "cover": file_url(topic.slug, result.cover.name)}
    return {"urls": urls, "duration": round(result.duration, 3), "captions": list(result.captions)}


async def run_render(topic: Topic, note: Note, kind: str = "preview") -> None:
    """Render in a thread: ``preview.mp4`` and ``contact_sheet.png`` (``preview_done``), or ``final.mp4`` and
    ``cover.jpg`` (``compose``: ``compose_done``); a cancel stops the encode (between frames, or its ffmpeg)."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(_compose if kind == "compose" else _render, topic, stop))
    try:
        made = await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await task  # the thread ends at its next frame; the lock and the temporary file go with it
        raise
    note("compose_done" if kind == "compose" else "preview_done", made)
