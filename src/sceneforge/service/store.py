"""The service's durable state, kept with each topic: its status and its events.

::

    <out>/<slug>/.sceneforge/service/status.json    the topic's last job: status, error, options, job, times
    <out>/<slug>/.sceneforge/service/events.jsonl   every event, one JSON object a line, ids increasing

The topic folder is the unit: deleting or moving it takes its service state along,
and a restarted service learns every topic from the folders under ``--out``
(:meth:`TopicStore.scan`). ``status.json`` is replaced atomically; the events file
is appended to (a line cut by a crash is skipped when read) and compacted to its
newer half when it grows past :data:`MAX_EVENTS_BYTES`, at the start of a job.

:func:`read_state` is the one reader of a topic's ``scenes.json`` (its answer, its edits, the
records found at startup): each version of the file is parsed once, a few topics are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import AssetMissingError, ConfigError
from ..pipeline import Topic, TopicLayout, atomic_write_bytes, redact_url, valid_slug
from .eventlog import MAX_EVENTS_BYTES, EventLog, EventReader, json_line
from .models import JobSpec, JobStatus

__all__ = ["TopicRecord", "TopicStore", "iso_time", "MAX_EVENTS_BYTES", "read_state", "forget_state"]


def iso_time(t: float) -> str:
    """``2025-06-11T09:30:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


_STATES_KEPT = 16  # parsed scenes.json files kept
_states: OrderedDict[str, tuple[int, int, dict[str, Any]]] = OrderedDict()


def read_state(layout: TopicLayout) -> tuple[dict[str, Any], os.stat_result]:
    """The topic's ``scenes.json`` (parsed once per version of the file: a few topics are kept), with the
    ``os.stat`` taken before it was read: what was read is that version of the file or a newer one, so a
    cache keyed by that stat is never stale past the next change."""
    path = layout.scenes_json
    key = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AssetMissingError(f"topic {layout.slug!r} has no scenes.json") from None
    cached = _states.get(key)
    if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
        with contextlib.suppress(KeyError):  # another thread's trim took it meanwhile
            _states.move_to_end(key)
        return cached[2], st
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("scenes"), list):
        raise ConfigError(f"{path} is not a sceneforge state")
    _states[key] = (st.st_mtime_ns, st.st_size, state)
    while len(_states) > _STATES_KEPT:
        _states.popitem(last=False)
    return state, st


def forget_state(layout: TopicLayout) -> None:
    """The topic went away: its parsed state is not kept."""
    _states.pop(str(layout.scenes_json), None)


@dataclass
class TopicRecord:
    """One topic as the service knows it (``status.json``)."""

    slug: str
    topic: str
    status: JobStatus = JobStatus.DONE
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""
    progress: dict[str, int] = field(default_factory=lambda: {"done": 0, "total": 0})
    options: dict[str, Any] = field(default_factory=dict)
    job: JobSpec = field(default_factory=JobSpec)
    last_event_id: int = 0
    queued_at: str = ""  # when its job was queued: a restarted service resumes in this order
    interrupted_from: str | None = None  # "running" or "queued": what an interrupted job was doing
    scene_states: dict[str, Any] | None = None  # each scene's state as last saved (.scene_states)
    scene_count: int = 0  # how many scenes its scenes.json has (kept up to date by whoever writes it)

    def to_json(self) -> dict[str, Any]:
        """``status.json``: everything, the webhook URL with its credentials included."""
        return {"slug": self.slug, "topic": self.topic, "status": self.status.value, "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at, "progress": dict(self.progress),
                "options": self.options, "job": self.job.to_json(), "queued_at": self.queued_at,
                "interrupted_from": self.interrupted_from, "scene_states": self.scene_states}

    def public_json(self) -> dict[str, Any]:
        """What a client sees: no webhook credentials, no queue bookkeeping."""
        options = dict(self.options)
        if isinstance(options.get("webhook_url"), str):
            options["webhook_url"] = redact_url(options["webhook_url"])
        return {"slug": self.slug, "topic": self.topic, "status": self.status.value, "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at, "progress": dict(self.progress),
                "options": options, "job": self.job.to_json()}

    def summary(self) -> dict[str, Any]:
        """The short form ``GET /api/topics`` lists."""
        return {"slug": self.slug, "topic": self.topic, "status": self.status.value, "updated_at": self.updated_at,
                "progress": dict(self.progress), "error": self.error}

    @classmethod
    def from_json(cls, slug: str, raw: dict[str, Any], topic: str) -> TopicRecord:
        try:
            status = JobStatus(str(raw.get("status")))
        except ValueError:
            status = JobStatus.INTERRUPTED  # unreadable status: treat as unfinished, never as done
        progress: dict[str, Any] = raw["progress"] if isinstance(raw.get("progress"), dict) else {}
        options: dict[str, Any] = raw["options"] if isinstance(raw.get("options"), dict) else {}
        error = raw.get("error") if isinstance(raw.get("error"), str) else None
        was = raw.get("interrupted_from")
        return cls(slug, topic, status, error, str(raw.get("created_at") or ""), str(raw.get("updated_at") or ""),
                   {"done": int(progress.get("done") or 0), "total": int(progress.get("total") or 0)},
                   options, JobSpec.from_json(raw.get("job")), queued_at=str(raw.get("queued_at") or ""),
                   interrupted_from=was if was in ("running", "queued") else None,
                   scene_states=raw["scene_states"] if isinstance(raw.get("scene_states"), dict) else None)


class TopicStore:
    """Status and events of the topics under one output folder."""

    def __init__(self, out_dir: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.out_dir = Path(out_dir)
        self.clock = clock
        self.events = EventLog(self.out_dir)

    def now(self) -> str:
        return iso_time(self.clock())

    def topic(self, slug: str) -> Topic:
        """The topic workspace of ``slug`` (UnsafePathError for a name that is no folder right under ``--out``)."""
        return Topic.open(self.out_dir, slug)

    def layout(self, slug: str) -> TopicLayout:
        return self.topic(slug).layout

    def _dir(self, slug: str) -> Path:
        return self.layout(slug).state_dir / "service"

    # ------------------------------------------------------------------ topics
    def exists(self, slug: str) -> bool:
        """A topic folder with a ``scenes.json`` (a folder that is a link is no topic: never scanned nor served)."""
        return valid_slug(slug) and self.topic(slug).exists()

    def slugs(self) -> list[str]:
        """Every topic folder under ``--out`` (one with a ``scenes.json``), made by the service or not."""
        try:
            entries = list(os.scandir(self.out_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and valid_slug(e.name)
                      and os.path.isfile(os.path.join(e.path, "scenes.json")))

    def scan(self) -> Iterator[TopicRecord]:
        """The record of every topic under ``--out``."""
        return self.load_all(self.slugs())

    def load_all(self, slugs: Iterable[str]) -> Iterator[TopicRecord]:
        """The records of these topics (the ids of deleted topics read once for all of them)."""
        deleted: dict[str, int] | None = None
        for slug in slugs:
            deleted = self.events.deleted() if deleted is None else deleted
            record = self.load(slug, deleted)
            if record is not None:
                yield record

    def load(self, slug: str, deleted: dict[str, int] | None = None) -> TopicRecord | None:
        """The topic's record; one made up for a topic the command line made (status ``done``).
        ``deleted``: :meth:`EventLog.deleted`, when the caller read it already."""
        layout = self.layout(slug)
        try:
            state, st = read_state(layout)
        except (AssetMissingError, ConfigError):
            return None
        topic: str = state["topic"] if isinstance(state.get("topic"), str) else slug
        try:
            raw = json.loads((self._dir(slug) / "status.json").read_text(encoding="utf-8"))
            record = TopicRecord.from_json(slug, raw if isinstance(raw, dict) else {}, topic)
        except (OSError, ValueError):
            made = iso_time(st.st_mtime)
            record = TopicRecord(slug, topic, created_at=made, updated_at=made)
        record.last_event_id = self.events.last_id(self.events_path(slug), slug, deleted)
        record.scene_count = len(state["scenes"])
        return record

    def save(self, record: TopicRecord) -> None:
        """Write ``status.json`` (atomically)."""
        data = json_line(record.to_json())
        atomic_write_bytes(self._dir(record.slug) / "status.json", data)

    # ------------------------------------------------------------------ events
    def events_path(self, slug: str) -> Path:
        return self._dir(slug) / "events.jsonl"

    def append_event(self, slug: str, event: dict[str, Any]) -> None:
        """Add one event (it carries its ``id``) to the topic's events file."""
        self.events.append(self.events_path(slug), event)

    def event_reader(self, slug: str, after: int) -> EventReader:
        """The kept events after ``after``, a bounded chunk at a time (blocking: use it in a thread)."""
        return EventReader(self.events_path(slug), after)

    def last_event_id(self, slug: str) -> int:
        """The highest id the topic has had (a deleted topic's count goes on), 0 when there is none."""
        return self.events.last_id(self.events_path(slug), slug)

    def compact_events(self, slug: str, limit: int = MAX_EVENTS_BYTES) -> None:
        """Keep the newer half of an events file that grew past ``limit`` bytes (ids are kept)."""
        self.events.compact(self.events_path(slug), limit)
