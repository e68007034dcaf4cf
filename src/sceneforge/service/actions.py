"""What a request does to a topic: submit it, edit a scene, re-roll an asset, go back to a take,
preview it, delete it. Each holds the topic (:meth:`JobQueue.claim`) while it changes files, and
calls the library for the change itself (:mod:`sceneforge.pipeline.topics`).

The topic's ``scenes.json`` is its state: a submission writes the checked scenes there
(asset fields dropped: a caller's paths are never taken as assets nor read), an edit or
a seed pin rewrites it, and every job reads it when it starts.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from typing import Any, Literal

from .. import ConfigError, SceneFile, SceneValidationError, Settings, UnsafePathError
from ..pipeline import DEFAULT_TOPIC, Take, Topic, aplan_run, parse_state, slugify, without_outputs
from .files import relative_value
from .jobs import JobQueue
from .models import JobSpec
from .options import check_options, job_settings, webhook_url
from .problems import UnknownTopic
from .references import confine_edit, confine_scene_paths, save_reference
from .store import TopicRecord
from .targets import WebhookTargets
from .views import forget, read_state, scene_count

__all__ = ["TopicActions", "VIEW_FIELDS"]

#: What the API adds to a scene (``GET /api/topics/{slug}``); a scene sent back with them is taken without.
VIEW_FIELDS = ("n", "urls", "state")


def _slug_of(data: Any) -> str:
    """The folder a submission's relative paths are read from (its topic's, when the topic names one)."""
    topic = data.get("topic") if isinstance(data, dict) else None
    try:
        return slugify(topic if isinstance(topic, str) else DEFAULT_TOPIC)
    except UnsafePathError:
        return slugify(DEFAULT_TOPIC)  # the plan says what is wrong with the topic


class TopicActions:
    """The changes the API makes to topics, on top of the job queue."""

    def __init__(self, jobs: JobQueue, targets: WebhookTargets) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.targets = targets

    @property
    def base(self) -> Settings:
        return self.jobs.base

    def topic(self, slug: str) -> Topic:
        return self.store.topic(slug)

    def check_scene(self, slug: str, n: int) -> TopicRecord:
        """The topic's record; AssetMissingError (404) for an unknown topic or scene."""
        record = self.jobs.get(slug)
        count = scene_count(self.topic(slug).layout)
        if not 1 <= n <= count:
            raise UnknownTopic(f"topic {slug!r} has scenes 1 to {count}, not {n}")
        return record

    async def plan(self, data: Any) -> tuple[SceneFile, dict[str, Any]]:
        """Check a submission (scenes and ``options``) like ``sceneforge run`` checks a file; nothing is written."""
        options: Any = None
        if isinstance(data, dict) and "options" in data:
            data = dict(data)
            options = data.pop("options")
        scenes = data.get("scenes") if isinstance(data, dict) else data
        if isinstance(scenes, list) and len(scenes) > self.base.serve_max_scenes:
            raise ConfigError(f"scenes: {len(scenes)} scenes; a topic holds at most {self.base.serve_max_scenes} "
                              "(serve_max_scenes): split it into several topics")
        if not isinstance(data, (dict, list)):
            # Never a path: plan_run would read a string as a scene file on this machine.
            parse_state(data, default_topic=DEFAULT_TOPIC)  # raises the line `sceneforge run` prints for it
        # references uploaded, workflows bundled: never read here (in a thread: a body may hold 100 000 scenes)
        data, problems = await asyncio.to_thread(confine_scene_paths, data)
        settings = job_settings(self.base, options)  # every problem of the options at once
        options = check_options(options)
        if (url := webhook_url(options)) is not None:
            await self.targets.check(url)  # never the service itself, its machine or its network
        try:
            sf = (await aplan_run([data], settings, base=self.topic(_slug_of(data)).root)).topics[0]
        except SceneValidationError as exc:
            raise SceneValidationError(problems + exc.problems) from None
        if problems:
            raise SceneValidationError(problems)
        sf = await asyncio.to_thread(without_outputs, sf, VIEW_FIELDS)
        return sf, options

    async def submit(self, data: Any) -> TopicRecord:
        """A new topic, or new scenes for one: checked, saved, its run queued; all or nothing (a failure
        puts back the folder as it was: no folder for a new topic, its earlier ``scenes.json`` for another)."""
        sf, options = await self.plan(data)
        slug = slugify(sf.topic)
        async with self.jobs.claim(slug):
            topic = self.topic(slug)
            before = await asyncio.to_thread(topic.snapshot)
            known = self.jobs.records.get(slug)
            try:
                await asyncio.to_thread(topic.write, sf)
                record = known or TopicRecord(slug, sf.topic, last_event_id=self.store.last_event_id(slug))
                record.topic, record.options, record.scene_count = sf.topic, options, len(sf.scenes)
                self.jobs.enqueue(record, JobSpec("run"))
            except BaseException:
                if known is None:
                    self.jobs.records.pop(slug, None)
                await asyncio.to_thread(topic.put_back, before)
                raise
        return record

    async def edit(self, slug: str, n: int, changes: dict[str, Any]) -> TopicRecord:
        """Change a scene and queue a run: the cache remakes exactly what the change invalidates."""
        record = self.check_scene(slug, n)
        if not changes:
            raise ConfigError("nothing to change: give scene fields such as script or image_prompt")
        # A scene sent back as the API showed it: its view fields and unchanged values (asset fields
        # included, which an edit may not set) are no change.
        topic = self.topic(slug)
        current = read_state(topic.layout)[0]["scenes"][n - 1]
        shown = relative_value(current, self.store.out_dir)
        changes = {k: v for k, v in changes.items()
                   if k not in VIEW_FIELDS and not (isinstance(shown, dict) and k in shown and shown[k] == v)}
        changes = confine_edit(n, changes)
        async with self.jobs.claim(slug):
            if changes:
                # The checks the job would fail on (a script, a reference, a voice, a workflow's kind ...)
                # answer this request: 422 and nothing saved, never a topic whose every job fails.
                sf = await asyncio.to_thread(topic.edited, n, changes)
                settings = job_settings(self.base, record.options).model_copy(update={"only_scenes": frozenset({n})})
                await aplan_run([sf.state()], settings, base=topic.root)
                await asyncio.to_thread(topic.edit, n, changes)
            self.jobs.note(record, "scene_edited", {"fields": sorted(changes)}, scene=n)
            self.jobs.enqueue(record, JobSpec("run"))
        return record

    async def regenerate(self, slug: str, n: int, stage: str, seed: int | None) -> TopicRecord:
        """A new take of one asset (its motion too after an image), with ``seed`` pinned or a new random one."""
        record = self.check_scene(slug, n)
        Topic.reroll_settings(job_settings(self.base, record.options), n, stage)  # refuses what cannot be re-rolled
        topic = self.topic(slug)
        async with self.jobs.claim(slug):
            await asyncio.to_thread(topic.check_free)  # 409 now, not a failed job later
            reroll = await asyncio.to_thread(topic.plan_reroll, n, stage, seed)
            self.jobs.enqueue(record, JobSpec.of(reroll))
        return record

    async def takes(self, slug: str, n: int) -> dict[str, list[Take]]:
        self.check_scene(slug, n)
        return await asyncio.to_thread(self.topic(slug).takes, n)

    async def restore(self, slug: str, n: int, stage: str, take_id: str) -> TopicRecord:
        """Make an earlier take current again (no job: the files are put back as they were)."""
        record = self.check_scene(slug, n)
        takes = await self.takes(slug, n)
        if stage not in takes or not any(t.id == take_id for t in takes[stage]):
            raise UnknownTopic(f"scene {n} has no {stage} take {take_id!r}")
        async with self.jobs.claim(slug, queue_room=False):
            sf = await asyncio.to_thread(self.topic(slug).restore, n, stage, take_id)
            self.jobs.note(record, "take_restored", {"take": take_id}, scene=n, stage=stage)
            if stage == "image" and sf.scenes[n - 1].motion_frames_path is None \
                    and job_settings(self.base, record.options).run_motion:
                self.jobs.enqueue(record, JobSpec("run"))  # no kept motion of that image: it is made
        return record

    async def add_reference(self, slug: str, data: bytes) -> str:
        """Keep an uploaded reference image in the topic's folder (also before the topic is submitted,
        so its first submission can name it); the value for ``reference_image``."""
        if slug not in self.jobs.records and slugify(slug) != slug:
            raise UnknownTopic(f"no topic {slug!r}, and it is not a topic folder name (try {slugify(slug)!r})")
        return await asyncio.to_thread(save_reference, self.topic(slug).layout, data,
                                       int(self.base.reference_max_mb * 1024 * 1024))

    async def render(self, slug: str, kind: Literal["preview", "compose"]) -> TopicRecord:
        """Queue a render of the topic: its draft preview (``preview``) or its final cut (``compose``)."""
        record = self.jobs.get(slug)
        async with self.jobs.claim(slug):
            await asyncio.to_thread(self.topic(slug).check_free)  # 409 now, not a failed job later
            self.jobs.enqueue(record, JobSpec(kind))
        return record

    async def delete(self, slug: str) -> None:
        """Remove the topic's folder (refused while it has a job, or a command-line run holds it); also a
        folder that only holds references uploaded for a topic never submitted."""
        topic = self.topic(slug)
        record = None if self._references_only(slug) else self.jobs.get(slug)
        async with self.jobs.claim(slug, queue_room=False):
            trash = self.store.out_dir / f".deleted-{slug}-{secrets.token_hex(4)}"
            topic.move_away(trash)  # gone at once for every reader; removed below
            forget(topic.layout)
            if record is not None:
                self.jobs.forget(record)
        await asyncio.to_thread(shutil.rmtree, trash, True)

    def _references_only(self, slug: str) -> bool:
        root = self.topic(slug).root
        if root.is_symlink():
            raise UnknownTopic(f"no topic {slug!r}")  # a link is no topic folder: never listed, served or removed
        return slug not in self.jobs.records and (root / "references").is_dir() and not (root / "scenes.json").exists()

