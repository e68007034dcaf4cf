"""One typed event stream for progress bars (people) and JSON lines (machines)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TextIO

__all__ = ["Event", "EventKind", "EventSink", "Reporter", "null_sink", "null_report", "bound_reporter", "JsonLinesSink"]

EventKind = Literal[
    "run_started",
    "run_done",
    "stage_started",
    "stage_done",
    "scene_started",
    "scene_cached",
    "scene_retried",
    "scene_done",
    "scene_failed",
    "job_queued",
    "job_waiting",
    "job_started",
    "job_progress",
    "warning",
    # the service's own (``sceneforge serve``): a topic's job changed status, a scene was edited, a take
    # restored, a failed re-roll undone, a preview made, the topic deleted
    "status",
    "scene_edited",
    "take_restored",
    "reroll_undone",
    "preview_done",
    "compose_done",
    "deleted",
]


@dataclass(frozen=True)
class Event:
    """Something that happened. ``data`` is small and JSON-able, and never holds secrets."""

    kind: EventKind
    stage: str | None = None
    scene: int | None = None
    topic: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)


EventSink = Callable[[Event], None]


class Reporter(Protocol):
    """What a backend gets with each call: ``report(kind, **data)``, already bound to the
    topic, stage and scene the call is for (so a backend shared by many topics never
    needs to know which one it is working for)."""

    def __call__(self, kind: EventKind, /, **data: Any) -> None: ...


def null_sink(event: Event) -> None:
    """Discard events."""


def null_report(kind: EventKind, /, **data: Any) -> None:
    """Discard reports (calling a backend outside a run)."""


def bound_reporter(emit: EventSink, *, topic: str | None, stage: str | None, scene: int | None) -> Reporter:
    """A :class:`Reporter` that turns ``report(kind, **data)`` into an :class:`Event` for ``emit``."""

    def report(kind: EventKind, /, **data: Any) -> None:
        emit(Event(kind=kind, stage=stage, scene=scene, topic=topic, data=data))

    return report


class JsonLinesSink:
    """Write each event as one JSON line to a text stream, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        self._stream.write(event.to_json() + "\n")
        self._stream.flush()
