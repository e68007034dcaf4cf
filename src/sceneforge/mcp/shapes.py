"""What the tools answer: pydantic models, whose JSON schemas the SDK publishes as the tools' output schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..service.models import Progress, TopicSummary  # the HTTP API's own shapes: one contract

__all__ = ["Accepted", "Progress", "TopicSummary", "TopicList", "Failure", "StageInfo", "SceneInfo", "TopicInfo",
           "WaitResult", "TakeInfo", "Takes", "VoiceList", "StageState"]

#: Where a scene's stage is: ``done`` (its asset exists), ``queued``/``running`` (a job will make it),
#: ``failed`` (the last job failed it: see ``failure``), ``missing`` (not made, no job), ``off`` (not one
#: of the topic's stages).
StageState = Literal["done", "queued", "running", "failed", "missing", "off"]


class Accepted(BaseModel):
    """The topic's job was queued (or changed); ``wait_topic`` follows it."""

    slug: str
    status: str
    next: str = Field(description="What to call next.")


class TopicList(BaseModel):
    topics: list[TopicSummary]


class Failure(BaseModel):
    """Why a scene's stage failed in the topic's last job."""

    stage: str
    kind: str = Field(description="The error's type, e.g. GenerationError, ServerUnavailableError.")
    message: str
    retryable: bool = Field(description="Whether re-running (regenerate) may well succeed.")


class StageInfo(BaseModel):
    state: StageState
    seed: int | None = None
    duration_s: float | None = None
    gpu_seconds: float | None = None


class SceneInfo(BaseModel):
    """One scene: its text fields, each stage's state, and its files (paths over stdio, URLs over HTTP)."""

    n: int = Field(description="The scene's number, from 1.")
    script: str | None = None
    image_prompt: str | None = None
    motion_prompt: str | None = None
    stages: dict[str, StageInfo]
    failure: Failure | None = None
    fields: dict[str, Any] = Field(default_factory=dict,
                                   description="Every other field of the scene in scenes.json (kept as given).")
    files: dict[str, Any] = Field(default_factory=dict, description=(
        "audio, subtitle, image, motion_frames (a list), motion_video, reference: absolute paths over stdio, "
        "/files/... URLs (relative to the service) over HTTP; only those that exist."))


class TopicInfo(TopicSummary):
    created_at: str
    job: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    previews: dict[str, str] = Field(default_factory=dict, description="preview, contact_sheet (when made).")
    scenes: list[SceneInfo]


class WaitResult(TopicSummary):
    finished: bool = Field(description="False: the timeout passed and the job is still queued or running.")
    message: str


class TakeInfo(BaseModel):
    id: str
    seed: int | None = None
    created_at: str
    current: bool
    files: list[str] = Field(default_factory=list, description="Paths over stdio, /files/... URLs over HTTP.")


class Takes(BaseModel):
    """A scene's takes per stage, oldest first; ``current`` marks the one in use."""

    slug: str
    n: int
    audio: list[TakeInfo] = Field(default_factory=list)
    image: list[TakeInfo] = Field(default_factory=list)
    motion: list[TakeInfo] = Field(default_factory=list)


class VoiceInfo(BaseModel):
    name: str = Field(description="The value for a scene's or the options' voice.")
    language: str | None = None
    gender: str | None = None
    description: str | None = None


class VoiceList(BaseModel):
    engine: str
    language: str | None = None
    voices: list[VoiceInfo]
