"""What ``sceneforge compose`` is asked for: frame size, pacing, transition, captions, music, title.

:class:`ComposeOptions` checks its values when made, so a bad option is a
:class:`~sceneforge.errors.ConfigError` before any file is read or any ffmpeg
starts. The library accepts any even frame size (tests render small); the
command line offers the four sizes of :data:`SIZES`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

__all__ = ["CAPTION_MODES", "ComposeOptions", "SIZES", "TRANSITIONS", "parse_size"]

#: The frame sizes the command line offers: Shorts/Reels/TikTok portrait, a lighter portrait, square, landscape.
SIZES = ("1080x1920", "720x1280", "1080x1080", "1920x1080")
#: ``none`` cuts; the others are ffmpeg ``xfade`` transitions.
TRANSITIONS = ("none", "fade", "fadeblack", "fadewhite", "dissolve", "wipeleft", "wiperight",
               "slideleft", "slideright", "slideup", "slidedown", "circleopen", "circleclose", "smoothleft",
               "smoothright", "zoomin")
#: ``words``: word by word where the engine gave word timings, lines elsewhere.
CAPTION_MODES = ("none", "lines", "words")
FIT_MODES = ("auto", "cover", "blur")

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """``"1080x1920"`` as ``(1080, 1920)``; both sides even, 64..4096 pixels."""
    m = _SIZE.match(text or "")
    if not m:
        raise ConfigError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 1080x1920")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 4096 and 64 <= h <= 4096) or w % 2 or h % 2:
        raise ConfigError(f"size {text!r}: both sides must be even and between 64 and 4096 pixels")
    return w, h


def _finite(name: str, value: float, low: float, high: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not low <= v <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return v


@dataclass(frozen=True)
class ComposeOptions:
    """How the final cut is made. Every field is checked in ``__post_init__`` (:class:`ConfigError`)."""

    size: tuple[int, int] = (1080, 1920)
    fps: int = 30
    pad: float = 0.25  # seconds of picture after each scene's narration
    transition: str = "fade"
    transition_duration: float = 0.3
    captions: str = "words"
    music: Path | None = None
    music_volume: float = 0.3  # the track's level under the mix before ducking (linear)
    loudness: float = -14.0  # LUFS integrated
    true_peak: float = -1.5  # dBTP the limiter aims at (the output is checked against -1)
    fit: str = "auto"
    title: str | None = None
    crf: int = 21
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        w, h = self.size
        parse_size(f"{w}x{h}")
        if self.fps not in (24, 25, 30, 50, 60):
            raise ConfigError(f"fps must be one of 24, 25, 30, 50, 60, got {self.fps!r}")
        _finite("pad", self.pad, 0.0, 5.0)
        _finite("transition duration", self.transition_duration, 0.0, 2.0)
        _finite("music volume", self.music_volume, 0.0, 1.0)
        _finite("loudness", self.loudness, -40.0, -5.0)
        _finite("true peak", self.true_peak, -9.0, 0.0)
        for name, value, allowed in (("transition", self.transition, TRANSITIONS),
                                     ("captions", self.captions, CAPTION_MODES), ("fit", self.fit, FIT_MODES)):
            if value not in allowed:
                raise ConfigError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
        if not 0 <= int(self.crf) <= 51:
            raise ConfigError(f"crf must be between 0 and 51, got {self.crf!r}")

    @property
    def crossfade(self) -> float:
        """Seconds two scenes overlap (0 with ``transition="none"``)."""
        return 0.0 if self.transition == "none" else float(self.transition_duration)
