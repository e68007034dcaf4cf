"""The service's vocabulary: job status, what a job does, and the JSON shapes of requests and answers.

:class:`JobStatus` is a string enum in the style of arq's: a topic's last job is
``queued``, ``running``, ``done``, ``failed``, ``cancelled`` or ``interrupted`` (the
service stopped while it was queued or running; a restarted service resumes it).
The pydantic models are the HTTP contract: FastAPI documents every route with them
and turns what a route returns into its answer through them. One answer is built as
bytes instead, ``GET /api/topics/{slug}`` (:mod:`.views`: each scene encoded once per
change, so a 200-scene topic with 81 frames each is not validated on every read);
``tests/service/test_contract.py`` checks it, like every answer, against the
published schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import ConfigError, EventKind
from ..pipeline import MAX_SEED, Reroll

__all__ = [
    "JobStatus", "ACTIVE", "RESUMABLE", "JobSpec", "JobKind", "RegenerateRequest", "SceneEdit", "Health",
    "Accepted", "Progress", "TopicSummary", "TopicState", "TakeOut", "TakesOut", "Problems", "Detail", "Failure",
    "SceneState", "SceneView", "Deleted", "ReferenceOut", "StreamEvent",
]


class JobStatus(StrEnum):
    """Where a topic's last job is."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


#: A job in these states holds its topic: no other job, edit or delete until it ends.
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
#: What a starting service finds unfinished (and resumes).
RESUMABLE = ACTIVE | {JobStatus.INTERRUPTED}

JobKind = Literal["run", "regenerate", "preview", "compose"]


@dataclass
class JobSpec:
    """What a topic's job does. Stored with the topic, so a restarted service can run it again.

    ``run``: the topic's stages under its options (the cache decides what is remade).
    ``regenerate``: a new take of ``stage`` for ``scene`` (``take_before`` is the take that
    was current when it was asked for: a resumed re-roll that already replaced it is not
    forced again, so it re-attaches to its journaled job instead of running a second one).
    ``preview``: ``preview.mp4`` and ``contact_sheet.png``.
    ``compose``: the final cut, ``final.mp4`` and ``cover.jpg`` (default compose options).

    A re-roll's seed is pinned when its job starts (``seed``; None: a new random one), not
    when it is asked for: a re-roll cancelled while queued changes nothing, and one cancelled
    or failed before it made its asset puts back the take and the pin (``pin_before``) it had.
    """

    kind: JobKind = "run"
    scene: int | None = None
    stage: str | None = None
    take_before: str | None = None
    seed: int | None = None
    pin_before: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def reroll(self) -> Reroll:
        """The re-roll this job is (a ``regenerate`` job; ConfigError for one without its scene and stage)."""
        if self.kind != "regenerate" or self.scene is None or self.stage is None:
            raise ConfigError("a re-roll job without its scene and stage")
        return Reroll(self.scene, self.stage, self.seed, self.take_before, self.pin_before)

    @classmethod
    def of(cls, reroll: Reroll) -> JobSpec:
        return cls("regenerate", reroll.scene, reroll.stage, reroll.take_before, reroll.seed, reroll.pin_before)

    @classmethod
    def from_json(cls, raw: Any) -> JobSpec:
        if not isinstance(raw, dict) or raw.get("kind") not in ("run", "regenerate", "preview", "compose"):
            return cls()
        def whole(name: str) -> int | None:
            value = raw.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(raw["kind"], whole("scene"),
                   raw.get("stage") if isinstance(raw.get("stage"), str) else None,
                   raw.get("take_before") if isinstance(raw.get("take_before"), str) else None,
                   whole("seed"), whole("pin_before"))


# --------------------------------------------------------------------------- requests

class RegenerateRequest(BaseModel):
    """A new take of one asset of one scene."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal["audio", "image", "motion"]
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Pin this seed; none: a new random seed.")


class SceneEdit(BaseModel):
    """Scene fields to change (``null`` removes one). Other fields, unknown to sceneforge, are kept as given."""

    model_config = ConfigDict(extra="allow")

    script: str | None = None
    image_prompt: str | None = None
    motion_prompt: str | None = None
    negative_prompt: str | None = None
    voice: str | None = None
    rate: float | None = None
    seed: int | None = None
    motion_seed: int | None = None


# --------------------------------------------------------------------------- answers (for the OpenAPI document)

class Detail(BaseModel):
    detail: str


class Problems(BaseModel):
    detail: str
    problems: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Accepted(BaseModel):
    slug: str
    status: JobStatus


class Progress(BaseModel):
    done: int
    total: int


class TopicSummary(BaseModel):
    slug: str
    topic: str
    status: JobStatus
    updated_at: str
    progress: Progress
    error: str | None = None


class Failure(BaseModel):
    """Why a scene failed, for a client to act on without reading the message."""

    stage: str | None = Field(description="audio, image or motion; null for a job that failed naming no scene")
    kind: str = Field(description="The error's class (GenerationError, ServerUnavailableError ...), 'upstream' "
                                  "for motion whose image failed, 'job' for a failed job")
    message: str
    retryable: bool = Field(description="Whether another try may work (a re-roll, a later run)")


class SceneState(BaseModel):
    """A scene's state as of the topic's ``last_event_id`` (the events after it carry it on)."""

    phase: Literal["done", "queued", "making", "ready", "failed", "cancelled", "interrupted"]
    stage: str | None = None
    note: str = ""
    stages: dict[str, Literal["queued", "making", "done", "failed"]] = Field(
        default_factory=dict, description="Each stage the last job touched")
    failure: Failure | None = None


class SceneView(BaseModel):
    """A scene as ``scenes.json`` has it (paths relative to the output folder, unknown fields kept, and
    ``gpu_seconds`` / ``gpu_cost`` by stage: what made its current assets, where measured), plus ``n``, the
    ``urls`` of its files that exist and its ``state``."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(ge=1)
    urls: dict[str, str | list[str]] = Field(
        description="audio, subtitle, image, motion_frames (a list), motion_video, reference: those that exist")
    state: SceneState


class TopicState(TopicSummary):
    created_at: str
    job: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    last_event_id: int = 0
    preview_urls: dict[str, str] = Field(
        default_factory=dict, description='"preview" (preview.mp4) and "contact_sheet", when a preview made them; '
                    '"final" (final.mp4) and "cover" (cover.jpg), when a compose made them.')
    reference_image: str | None = Field(None, description="The topic's reference image, when it has one.")
    reference_url: str | None = None
    gpu_seconds_total: dict[str, float] | None = Field(
        None, description="GPU seconds of every job the topic ran, re-rolls included, by stage (where measured)")
    gpu_cost_total: dict[str, float] | None = Field(
        None, description="Their cost, by stage, where a pool member has a price_per_second")
    scenes: list[SceneView] = Field(default_factory=list)


class Deleted(BaseModel):
    slug: str
    deleted: Literal[True] = True


class ReferenceOut(BaseModel):
    reference_image: str = Field(description="The value for a scene's or the topic's reference_image")
    url: str


class StreamEvent(BaseModel):
    """The ``data`` of each Server-Sent Event (its ``id`` line is the same ``id``)."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=1, description="Increasing, never reused for the slug (also across deletion)")
    slug: str
    kind: EventKind
    topic: str | None = None
    stage: str | None = None
    scene: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    time: float


class TakeOut(BaseModel):
    id: str
    seed: int | None
    url: str | None
    urls: list[str]
    created_at: str
    current: bool


class TakesOut(BaseModel):
    audio: list[TakeOut]
    image: list[TakeOut]
    motion: list[TakeOut]
