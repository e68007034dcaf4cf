"""The motion backend interface and registry.

A backend turns a scene's image into numbered PNG frames in a folder. It writes
the frames into ``work_dir`` (a temporary folder the stage renames into place
when complete) as ``frame_0001.png`` ... and returns them in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..events import Event, EventSink, null_sink
from ..registry import Registry

__all__ = ["MotionResult", "MotionBackend", "motion_registry"]


@dataclass
class MotionResult:
    """Frames written into the work folder, in order, and facts about them."""

    frames: list[Path]
    fps: float
    fields: dict[str, Any] = field(default_factory=dict)  # e.g. motion_seed
    video: Path | None = None  # a video the engine produced, if any (in work_dir)


class MotionBackend(ABC):
    """Base class of motion engines."""

    name: ClassVar[str]

    emit: EventSink = staticmethod(null_sink)

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any) -> MotionBackend:
        """Build the backend from :class:`sceneforge.config.Settings`."""

    async def start(self) -> None:
        """Check the engine is usable. Raise ServerUnavailableError if not."""

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the image bytes and prompt that determines the frames."""

    @abstractmethod
    async def generate(self, scene: int, image: Path, prompt: str, work_dir: Path) -> MotionResult:
        """Make frames for scene ``scene`` from ``image`` into ``work_dir``."""

    async def aclose(self) -> None:
        """Release sessions and connections."""

    def _event(self, kind: Any, scene: int | None = None, **data: Any) -> None:
        self.emit(Event(kind=kind, stage="motion", scene=scene, data=data))


motion_registry: Registry[MotionBackend] = Registry(
    "motion",
    {"wan": "sceneforge.motion.wan", "kenburns": "sceneforge.motion.kenburns"},
)
