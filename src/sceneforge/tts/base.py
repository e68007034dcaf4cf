"""The narration backend interface and registry.

A backend turns one :class:`SpeechRequest` into one MP3 file and reports its
duration and, when the engine gives timings, subtitle cues. It writes
``request.dest`` atomically (use :func:`sceneforge.fsutil.atomic_path`), never
leaves a 0-byte file, and raises :class:`~sceneforge.errors.TransientError` for
failures worth retrying. A request's ``voice`` and ``rate`` (a scene's own) win
over the backend's options.
"""

from __future__ import annotations

import difflib
from abc import abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..backend import Backend
from ..events import Reporter, null_report
from ..registry import Registry

if TYPE_CHECKING:
    from typing import Self

    from ..backend import BackendResources
    from ..config import Settings

__all__ = [
    "Cue", "SpeechRequest", "SpeechResult", "TTSOptions", "TTSBackend", "tts_registry", "format_srt", "mp3_duration",
]


@dataclass(frozen=True)
class Cue:
    """One subtitle line, times in seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SpeechRequest:
    """One scene's narration: the text, where the MP3 goes, and the scene's own voice and rate
    (``None``: the backend's)."""

    scene: int
    text: str
    dest: Path
    voice: str | None = None
    rate: float | None = None

    def key_fields(self) -> dict[str, Any]:
        """What decides the audio besides the backend's options."""
        return {"text": self.text, "voice": self.voice, "rate": self.rate}


@dataclass
class SpeechResult:
    """What a backend produced for one scene."""

    duration: float
    cues: list[Cue] = field(default_factory=list)
    words: list[Cue] = field(default_factory=list)  # one per spoken word, when the engine gives them


class TTSOptions(BaseModel):
    """Options every engine understands. ``rate`` is a speed multiplier (1.0 = normal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voice: str | None = None
    rate: float = 1.0
    timeout: float = 60.0


class TTSBackend(Backend[SpeechRequest]):
    """Base class of narration engines."""

    Options: ClassVar[type[TTSOptions]] = TTSOptions
    max_concurrency: int | None = 4

    def __init__(self, options: TTSOptions | None = None) -> None:
        self.options = options or self.Options()

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> Self:
        """Build the backend from :class:`sceneforge.config.Settings` (narration needs no shared resources)."""
        return cls(cls.Options(voice=settings.voice, rate=settings.rate, timeout=settings.tts_timeout))

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the audio (never secrets)."""
        return {"engine": self.name, **self.options.model_dump(mode="json", exclude={"timeout", "api_key", "base_url"})}

    def voice_for(self, request: SpeechRequest) -> str | None:
        """The voice this request is spoken with: the scene's own, else the backend's."""
        return request.voice or self.options.voice

    def rate_for(self, request: SpeechRequest) -> float:
        """The speed multiplier of this request: the scene's own, else the backend's."""
        return request.rate if request.rate is not None else self.options.rate

    async def list_voices(self) -> list[str] | None:
        """Every voice name this engine has, or None when it cannot tell (then voices are not checked)."""
        return None

    async def unknown_voices(self, voices: Collection[str]) -> dict[str, list[str]]:
        """The voices among ``voices`` the engine does not have, each with the nearest names it has.

        Empty when every one is known, or when the engine cannot list its voices.
        """
        known = await self.list_voices()
        if known is None:
            return {}
        have = {v.lower() for v in known}
        return {v: difflib.get_close_matches(v, known, n=3, cutoff=0.6) for v in voices if v.lower() not in have}

    @abstractmethod
    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        """Write ``request.text`` as MP3 to ``request.dest`` (atomically) and describe the result."""


tts_registry: Registry[TTSBackend] = Registry(
    "narration",
    "sceneforge.tts",
    {
        "espeak": "sceneforge.tts.espeak:EspeakBackend",
        "edge": "sceneforge.tts.edge:EdgeBackend",
        "openai": "sceneforge.tts.openai:OpenAIBackend",
    },
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

    info = MP3(str(path)).info
    if info is None:
        raise ValueError(f"{path} has no MP3 stream")
    return float(info.length)
