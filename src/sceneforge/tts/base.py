"""The narration backend interface and registry.

A backend turns one text into one MP3 file and reports its duration and, when
the engine gives timings, subtitle cues. It writes ``dest`` atomically (use
:func:`sceneforge.fsutil.atomic_path`), never leaves a 0-byte file, and raises
:class:`~sceneforge.errors.TransientError` for failures worth retrying.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..registry import Registry

__all__ = ["Cue", "SpeechResult", "TTSOptions", "TTSBackend", "tts_registry", "format_srt", "mp3_duration"]


@dataclass(frozen=True)
class Cue:
    """One subtitle line, times in seconds."""

    start: float
    end: float
    text: str


@dataclass
class SpeechResult:
    """What a backend produced for one scene."""

    duration: float
    cues: list[Cue] = field(default_factory=list)


class TTSOptions(BaseModel):
    """Options every engine understands. ``rate`` is a speed multiplier (1.0 = normal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voice: str | None = None
    rate: float = 1.0
    timeout: float = 60.0


class TTSBackend(ABC):
    """Base class of narration engines."""

    name: ClassVar[str]
    Options: ClassVar[type[TTSOptions]] = TTSOptions
    default_concurrency: ClassVar[int] = 4

    def __init__(self, options: TTSOptions | None = None) -> None:
        self.options = options or self.Options()

    @classmethod
    def from_settings(cls, settings: Any) -> TTSBackend:
        """Build the backend from :class:`sceneforge.config.Settings`."""
        return cls(cls.Options(voice=settings.voice, rate=settings.rate, timeout=settings.tts_timeout))

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the audio (never secrets)."""
        return {"engine": self.name, **self.options.model_dump(mode="json", exclude={"timeout", "api_key", "base_url"})}

    @abstractmethod
    async def synthesize(self, text: str, dest: Path) -> SpeechResult:
        """Write ``text`` as MP3 to ``dest`` (atomically) and describe the result."""

    async def aclose(self) -> None:
        """Release resources (sessions, worker processes)."""


tts_registry: Registry[TTSBackend] = Registry(
    "narration",
    {"espeak": "sceneforge.tts.espeak", "edge": "sceneforge.tts.edge", "openai": "sceneforge.tts.openai"},
)


def _ts(t: float) -> str:
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def format_srt(cues: list[Cue]) -> str:
    """Cues as SRT text."""
    blocks = [f"{i}\n{_ts(c.start)} --> {_ts(c.end)}\n{c.text.strip()}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def mp3_duration(path: Path) -> float:
    """Duration of an MP3 in seconds (mutagen; about 1 ms)."""
    from mutagen.mp3 import MP3

    return float(MP3(str(path)).info.length)
