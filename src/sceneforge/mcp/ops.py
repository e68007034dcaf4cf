"""The one door from the MCP tools into the service: :class:`ServiceOps`.

Every tool calls one method here, and every method calls what the HTTP route for
the same thing calls today (:class:`~sceneforge.service.actions.TopicActions`,
:class:`~sceneforge.service.jobs.JobQueue`, :mod:`~sceneforge.service.views`), so
the same checks apply and the same messages come back. A sceneforge error becomes
:class:`OpsError`, whose lines are what the HTTP answer carries (a 422's ``problems``;
for other errors every line of the error's text, where the answer's ``detail`` has the
first), paths under the output folder said relative to it.

When the service's internals move, this module is the only one to re-point.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from ..config import STAGES, Settings
from ..doctor import DoctorReport, doctor_report
from ..errors import ConfigError, SceneforgeError
from ..pipeline import TopicLayout
from ..scenes import decode_scene_json
from ..service.actions import TopicActions
from ..service.options import job_settings
from ..service.problems import problem_lines
from ..service.service import Service
from ..service.store import TopicRecord
from ..service.views import scenes_json, takes_view, topic_answer
from ..voices import Voice, list_voices

__all__ = ["ServiceOps", "OpsError", "Progress", "SceneRead"]

#: ``(done, total)`` steps of a topic's job, as its record counts them.
Progress = Callable[[int, int], Awaitable[None]]


class OpsError(Exception):
    """A refused call: ``lines`` say what was wrong, one problem each (what the HTTP API would answer)."""

    def __init__(self, lines: list[str], kind: str) -> None:
        self.lines = lines
        self.kind = kind
        super().__init__("\n".join(lines))


async def _as_request_json(value: Any) -> Any:
    """``value`` through the same JSON decoding an HTTP body gets (NaN, Infinity ... refused alike), off the
    event loop (a big topic's scenes take a while to encode and decode)."""
    return await asyncio.to_thread(
        lambda: decode_scene_json(json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8")))


@dataclass(frozen=True)
class SceneRead:
    """One scene as ``GET /api/topics/{slug}`` shows it (with its ``state``), its topic's status and stages."""

    scene: dict[str, Any]
    status: str
    stages: set[str]


def _read_scene(actions: TopicActions, layout: TopicLayout, slug: str, n: int) -> tuple[int, dict[str, Any]]:
    """The topic's scene count and scene ``n`` decoded (only that one): the 404 text for an unknown scene."""
    actions.check_scene(slug, n)
    encoded = scenes_json(layout)
    return len(encoded), dict(json.loads(encoded[n - 1]))


class ServiceOps:
    """Typed calls into one running :class:`Service`.

    ``local``: the caller runs on this machine (stdio), so answers carry file paths;
    over HTTP they carry the service's ``/files`` URLs instead.
    """

    def __init__(self, service: Service, *, local: bool) -> None:
        self.service = service
        self.local = local

    # ------------------------------------------------------------------ errors
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except SceneforgeError as exc:
            raise self.refusal(exc) from None

    def refusal(self, exc: SceneforgeError) -> OpsError:
        """The error's lines as the HTTP API answers them (a 422's ``problems``), paths made relative."""
        return OpsError(problem_lines(exc, self.service.out_dir), type(exc).__name__)

    @property
    def settings(self) -> Settings:
        return self.service.settings

    # ------------------------------------------------------------------ topics
    async def submit(self, scenes: Any, topic: str | None, options: Any) -> dict[str, str]:
        """``POST /api/topics``: every problem at once, nothing written; else the topic's run queued."""
        data: dict[str, Any] = {"scenes": scenes}
        if topic is not None:
            data["topic"] = topic
        if options is not None:
            data["options"] = options
        with self._errors():
            record = await self.service.actions.submit(await _as_request_json(data))
        return {"slug": record.slug, "status": record.status.value}

    def list_topics(self) -> list[dict[str, Any]]:
        """``GET /api/topics``."""
        with self._errors():
            return [r.summary() for r in self.service.jobs.all()]

    def topic_view(self, slug: str) -> dict[str, Any]:
        """``GET /api/topics/{slug}``, decoded."""
        with self._errors():
            record = self.service.jobs.get(slug)
            layout = self.service.store.layout(slug)
            return dict(json.loads(topic_answer(record, layout, self.service.jobs.scene_states)))

    def scenes_json(self, slug: str) -> bytes:
        """The topic's scenes with their URLs (what ``GET /api/topics/{slug}`` lists)."""
        with self._errors():
            self.service.jobs.get(slug)
            return b"[" + b",".join(scenes_json(self.service.store.layout(slug))) + b"]"

    def _stages(self, record: TopicRecord) -> set[str]:
        """The stages the topic's jobs make (its options over the service's settings)."""
        try:
            settings = job_settings(self.settings, record.options)
        except ConfigError:
            settings = self.settings
        return {stage for stage in STAGES if settings.wants(stage)}

    def stages(self, slug: str) -> set[str]:
        """The stages the topic's jobs make (its options over the service's settings)."""
        with self._errors():
            return self._stages(self.service.jobs.get(slug))

    async def scene(self, slug: str, n: int) -> SceneRead:
        """One scene of ``GET /api/topics/{slug}`` with its ``state`` (404 text for an unknown topic or scene):
        only that scene is decoded, off the event loop."""
        jobs = self.service.jobs
        with self._errors():
            record = jobs.get(slug)
            layout = self.service.store.layout(slug)
            count, scene = await asyncio.to_thread(_read_scene, self.service.actions, layout, slug, n)
            record.scene_count = count
            scene["state"] = jobs.scene_states(record).view(n)
            return SceneRead(scene, record.status.value, self._stages(record))

    def file_path(self, url: str) -> Path | None:
        """The file behind one of the service's ``/files/<slug>/<path>`` URLs (None for anything else)."""
        if not url.startswith("/files/"):
            return None
        slug, _, rel = url[len("/files/"):].partition("/")
        path = self.service.out_dir / unquote(slug) / unquote(rel)
        return path if os.path.isfile(path) else None

    # ------------------------------------------------------------------ waiting
    async def wait(self, slug: str, timeout: float, progress: Progress) -> dict[str, Any]:
        """Until the topic's job ends, the service stops or ``timeout`` seconds pass; ``progress`` hears
        each change of the job's done/total steps. The topic's summary, and ``finished``."""
        jobs = self.service.jobs
        with self._errors():
            record = jobs.get(slug)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        last: tuple[int, int] | None = None
        with self.service.hub.subscribe(slug) as sub:
            while True:
                now = (int(record.progress.get("done", 0)), int(record.progress.get("total", 0)))
                if now != last:
                    last = now
                    await progress(*now)
                if not jobs.busy(slug) or jobs.closing:
                    break
                left = deadline - loop.time()
                if left <= 0:
                    break
                event = await sub.get(left)
                if isinstance(event, dict) and event.get("kind") in ("__close__", "deleted"):
                    break
        return {**record.summary(), "finished": not jobs.busy(slug)}

    # ------------------------------------------------------------------ scenes
    async def edit(self, slug: str, n: int, changes: Any) -> dict[str, str]:
        """``PATCH /api/topics/{slug}/scenes/{n}``."""
        with self._errors():
            record = await self.service.actions.edit(slug, n, await _as_request_json(changes))
        return {"slug": record.slug, "status": record.status.value}

    async def regenerate(self, slug: str, n: int, stage: str, seed: int | None) -> dict[str, str]:
        """``POST /api/topics/{slug}/scenes/{n}/regenerate``."""
        with self._errors():
            record = await self.service.actions.regenerate(slug, n, stage, seed)
        return {"slug": record.slug, "status": record.status.value}

    async def takes(self, slug: str, n: int) -> dict[str, Any]:
        """``GET /api/topics/{slug}/scenes/{n}/takes``."""
        with self._errors():
            return takes_view(self.service.store.layout(slug), await self.service.actions.takes(slug, n))

    async def restore(self, slug: str, n: int, stage: str, take_id: str) -> dict[str, Any]:
        """``POST .../takes/{stage}/{take_id}/restore``: the scene's takes afterwards."""
        with self._errors():
            await self.service.actions.restore(slug, n, stage, take_id)
        return await self.takes(slug, n)

    async def cancel(self, slug: str) -> dict[str, str]:
        """``POST /api/topics/{slug}/cancel``."""
        with self._errors():
            record = await self.service.jobs.cancel(slug)
        return {"slug": record.slug, "status": record.status.value}

    async def render(self, slug: str, kind: Literal["preview", "compose"]) -> dict[str, str]:
        """``POST /api/topics/{slug}/preview`` or ``.../compose``."""
        with self._errors():
            record = await self.service.actions.render(slug, kind)
        return {"slug": record.slug, "status": record.status.value}

    # ------------------------------------------------------------------ machine
    async def voices(self, engine: str | None, language: str | None) -> tuple[str, list[Voice]]:
        """The voices of ``engine`` (default: the service's narration engine), optionally of one language."""
        engine = engine or self.settings.tts_engine
        with self._errors():
            return engine, await list_voices(engine, language, settings=self.settings)

    async def doctor(self) -> DoctorReport:
        """The servers and engines the service uses, healthy or not, and why."""
        return await doctor_report(self.settings, check_motion=self.settings.run_motion)
