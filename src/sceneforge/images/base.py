"""The image backend interface and registry.

A backend makes one PNG per :class:`ImageRequest`, written to ``request.dest``
atomically. ``start()`` is the health check (once per stage of a topic). The
request's ``negative`` and ``seed`` (a scene's own) win over the backend's options.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backend import Backend
from ..events import Reporter, null_report
from ..registry import Registry

__all__ = ["ImageRequest", "ImageResult", "ImageBackend", "image_registry"]


@dataclass(frozen=True)
class ImageRequest:
    """One scene's image: its prompt, where the PNG goes, and the scene's own choices
    (``None``: the backend's)."""

    scene: int
    prompt: str
    dest: Path
    negative: str | None = None
    seed: int | None = None

    def key_fields(self) -> dict[str, Any]:
        """What decides the image besides the backend's options and the seed.

        A pinned ``seed`` is not part of the key: a cached image matches a pin when it
        was made with that seed (its recorded ``image_seed``), whether pinned or drawn.
        """
        return {"prompt": self.prompt, "negative": self.negative}


@dataclass
class ImageResult:
    """What a backend produced. ``fields`` are scene fields to set (e.g. ``image_seed``)."""

    path: Path
    fields: dict[str, Any] = field(default_factory=dict)


class ImageBackend(Backend):
    """Base class of image engines."""

    @abstractmethod
    async def generate(self, request: ImageRequest, report: Reporter = null_report) -> ImageResult:
        """Make the image for ``request.scene`` at ``request.dest``."""


image_registry: Registry[ImageBackend] = Registry(
    "image",
    "sceneforge.image",
    {"comfyui": "sceneforge.images.comfyui:ComfyImageBackend", "storyboard": "sceneforge.images.storyboard:StoryboardBackend"},
)
