"""Word timings beside the narration: ``audio_scene_N.words.json``.

The narration step writes this sidecar (atomically) when the engine reported
word timings (edge-tts's WordBoundary events); ``sceneforge compose`` reads it
for word-by-word captions and falls back to the SRT's lines when it is absent.
The file records the sha256 of the MP3 it was made with, so timings left
beside a re-generated narration (an engine without word timings) are never used.

Format: ``{"version": 1, "audio_sha256": "...", "words": [[start, end, "word"], ...]}``,
seconds from the start of the narration.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..cache import file_digest
from ..fsutil import atomic_write_json
from .base import Cue

__all__ = ["WORDS_SUFFIX", "words_path", "write_words", "read_words"]

WORDS_SUFFIX = ".words.json"
_VERSION = 1


def words_path(audio: Path) -> Path:
    """Where the word timings of ``audio`` go: ``audio_scene_N.mp3`` -> ``audio_scene_N.words.json``."""
    return audio.with_name(audio.stem + WORDS_SUFFIX)


def write_words(audio: Path, words: list[Cue]) -> Path:
    """Write the word timings of the narration ``audio`` beside it; returns the sidecar's path."""
    payload = {
        "version": _VERSION,
        "audio_sha256": file_digest(audio),  # memoized: the cache record reuses it
        "words": [[round(w.start, 3), round(w.end, 3), w.text] for w in words],
    }
    return atomic_write_json(words_path(audio), payload)


def _word(item: Any) -> Cue | None:
    if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], str)):
        return None
    start, end, text = item
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start, end)):
        return None
    if start < 0 or end < start or not text.strip():
        return None
    return Cue(float(start), float(end), text.strip())


def read_words(audio: Path) -> list[Cue] | None:
    """The word timings recorded for ``audio``, or None when there are none usable.

    None when the sidecar is missing, unreadable, malformed, out of order, or
    was made for other audio (its sha256 differs).
    """
    path = words_path(audio)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("audio_sha256") != file_digest(audio):
            return None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    raw = data.get("words")
    words = [_word(item) for item in raw] if isinstance(raw, list) else []
    if not words or any(w is None for w in words):
        return None
    cues = [w for w in words if w is not None]
    if any(b.start < a.start for a, b in zip(cues, cues[1:])):
        return None
    return cues
