"""The image backend interface and registry.

A backend makes one PNG per scene from its prompt. ``start()`` runs once per
stage (the seed's health check); ``generate`` writes ``dest`` atomically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..events import Event, EventSink, null_sink
from ..registry import Registry

__all__ = ["ImageResult", "ImageBackend", "image_registry"]


@dataclass
class ImageResult:
    """What a backend produced. ``fields`` are extra scene fields to set (e.g. ``image_seed``)."""

    path: Path
    fields: dict[str, Any] = field(default_factory=dict)


class ImageBackend(ABC):
    """Base class of image engines."""

    name: ClassVar[str]

    emit: EventSink = staticmethod(null_sink)  # replaced by the stage to report job events

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any) -> ImageBackend:
        """Build the backend from :class:`sceneforge.config.Settings`."""

    async def start(self) -> None:
        """Check the engine is usable (health check). Raise ServerUnavailableError if not."""

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the prompt that determines the image (workflow content, seed policy, size)."""

    @abstractmethod
    async def generate(self, scene: int, prompt: str, dest: Path) -> ImageResult:
        """Make the image for scene ``scene`` (numbered from 1) at ``dest``."""

    async def aclose(self) -> None:
        """Release sessions and connections."""

    def _event(self, kind: Any, scene: int | None = None, **data: Any) -> None:
        self.emit(Event(kind=kind, stage="image", scene=scene, data=data))


image_registry: Registry[ImageBackend] = Registry(
    "image",
    {"comfyui": "sceneforge.images.comfyui", "storyboard": "sceneforge.images.storyboard"},
)
