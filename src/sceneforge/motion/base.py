"""The motion backend interface and registry.

A backend turns a scene's image into numbered PNG frames. It writes them into
``request.work_dir`` (a temporary folder the stage renames into place when
complete) as ``frame_0001.png`` ... and returns them in order.
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

__all__ = ["MotionRequest", "MotionResult", "MotionBackend", "motion_registry"]


@dataclass(frozen=True)
class MotionRequest:
    """One scene's clip: the image it starts from, its prompt, the work folder, and the
    scene's own seed (``None``: the backend's policy)."""

    scene: int
    image: Path
    prompt: str
    work_dir: Path
    seed: int | None = None
    workflow: str | None = None  # the scene's own motion workflow (bundled name or absolute path)

    def key_fields(self) -> dict[str, Any]:
        """What decides the frames besides the backend's options and the seed: the image's bytes
        (not its name) and the prompt. A pinned seed matches a cached clip made with that seed."""
        return {"image": file_digest(self.image), "prompt": self.prompt}


@dataclass
class MotionResult:
    """Frames written into the work folder, in order, and facts about them."""

    frames: list[Path]
    fps: float
    fields: dict[str, Any] = field(default_factory=dict)  # e.g. motion_seed
    video: Path | None = None  # a video the engine produced, if any (in work_dir)


class MotionBackend(Backend[MotionRequest]):
    """Base class of motion engines."""

    def check(self, request: MotionRequest) -> list[str]:
        """Problems with this request that need no server (one line each, naming the scene)."""
        return []

    @abstractmethod
    async def generate(self, request: MotionRequest, report: Reporter = null_report) -> MotionResult:
        """Make frames for ``request.scene`` from ``request.image`` into ``request.work_dir``."""


motion_registry: Registry[MotionBackend] = Registry(
    "motion",
    "sceneforge.motion",
    {"wan": "sceneforge.motion.wan:WanBackend", "kenburns": "sceneforge.motion.kenburns:KenBurnsBackend"},
)
