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
from ..cache import file_digest
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
    reference: Path | None = None  # a reference image (a character to keep), checked before the run
    workflow: str | None = None  # the scene's own workflow (bundled name or absolute path)
    voice: str | None = None  # the scene's narrator, for backends that show it (the storyboard card)

    def key_fields(self) -> dict[str, Any]:
        """What decides the image besides the backend's options and the seed.

        A pinned ``seed`` is not part of the key: a cached image matches a pin when it
        was made with that seed (its recorded ``image_seed``), whether pinned or drawn.
        The reference image counts by its bytes, not its name.
        """
        fields: dict[str, Any] = {"prompt": self.prompt, "negative": self.negative}
        if self.reference is not None:
            fields["reference"] = file_digest(self.reference)
        return fields


@dataclass
class ImageResult:
    """What a backend produced. ``fields`` are scene fields to set (e.g. ``image_seed``)."""

    path: Path
    fields: dict[str, Any] = field(default_factory=dict)


class ImageBackend(Backend[ImageRequest]):
    """Base class of image engines."""

    def check(self, request: ImageRequest) -> list[str]:
        """Problems with this request that need no server (one line each, naming the scene), found
        before any work: a workflow that does not load, a reference a workflow needs and lacks."""
        return []

    @abstractmethod
    async def generate(self, request: ImageRequest, report: Reporter = null_report) -> ImageResult:
        """Make the image for ``request.scene`` at ``request.dest``."""


image_registry: Registry[ImageBackend] = Registry(
    "image",
    "sceneforge.image",
    {"comfyui": "sceneforge.images.comfyui:ComfyImageBackend", "storyboard": "sceneforge.images.storyboard:StoryboardBackend"},
)
