"""Offline narration with espeak-ng (the ``espeakng-loader`` wheel, driven by ctypes).

Draft quality: English is intelligible, Korean is robotic (see the shared NOTES).

Choices worth knowing:

* **Voice.** ``voice=None`` picks by text: ``ko`` when the text contains Hangul,
  else ``en-us``. Variants are written ``ko+f3``. An edge-style name such as
  ``ko-KR-InJoonNeural`` (``Settings.voice`` is shared by all engines, and
  ``--offline`` switches edge to espeak) is mapped to its language (``ko``).
  An unknown voice or variant raises :class:`~sceneforge.errors.ConfigError`
  (never retried).
* **Rate.** ``175 * rate`` words per minute, clamped to espeak's 80..450.
* **Audio.** espeak makes 22050 Hz PCM; LAME resamples it to 24 kHz mono
  48 kbps, edge-tts's format, so every scene MP3 can be joined by stream copy.
* **Subtitles.** The text is cut into sentences (long ones at commas) and each
  piece is synthesized on its own; cue times are the running sum of the PCM
  lengths, so they are exact (espeak's own Korean word/sentence events lag).
* **Processes.** libespeak-ng keeps global state and is not thread-safe (threads
  would take turns), so synthesis runs in worker processes (``workers``, default
  the CPUs this process may use, at most 64), started on first use; each
  initializes espeak once. The workers are plain subprocesses running
  :mod:`~sceneforge.tts.espeak_worker` (see :mod:`~sceneforge.tts.pipe_pool`),
  not :mod:`multiprocessing` children: those re-run the caller's main module, so
  a script without an ``if __name__ == "__main__":`` guard ran once per worker.
  Any script may call sceneforge now. A call that times out kills its worker
  (a fresh one takes its place); a worker that dies fails its call with a
  :class:`~sceneforge.errors.TransientError` (retried).
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, field_validator

from ..errors import ConfigError, GenerationError, JobTimeoutError, PermanentError, TransientError
from ..events import Reporter, null_report
from ..fsutil import atomic_path
from .base import Cue, SpeechRequest, SpeechResult, TTSBackend, TTSOptions
from .pipe_pool import WorkerDied, WorkerPool

if TYPE_CHECKING:
    from ..backend import BackendResources
    from ..config import Settings

__all__ = ["EspeakOptions", "EspeakBackend", "pick_voice", "split_segments"]


_WORKER_SCRIPT = Path(__file__).with_name("espeak_worker.py")
# What a worker's failure kind becomes here (ConfigError: never retried; an engine failure is not a hiccup).
_ERROR_KINDS: dict[str, type[GenerationError] | type[ConfigError]] = {
    "config": ConfigError, "transient": TransientError, "generation": PermanentError,
}


def _espeak_voice_names() -> tuple[set[str], set[str]]:
    """The language codes (lower case) and voice variants of the bundled espeak-ng data."""
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    languages = {f.name.lower() for f in (data / "lang").rglob("*") if f.is_file()}
    variants = {f.name for f in (data / "voices" / "!v").iterdir() if f.is_file()}
    return languages, variants


def worker_command() -> list[str]:
    """The command of one worker: this Python, ``-P`` (no script folder or CWD on ``sys.path``), the file."""
    if not sys.executable:
        raise GenerationError("espeak workers cannot start: sys.executable is not set (an embedded Python?)")
    return [sys.executable, "-P", str(_WORKER_SCRIPT)]


def usable_cpus() -> int:
    """CPUs this process may run on (affinity/cgroup-aware where the OS tells), capped at 64."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    return max(1, min(64, n))

ESPEAK_RATE = 22_050  # espeak-ng's native output rate
BASE_WPM = 175  # espeak's default speed = rate 1.0
MIN_WPM, MAX_WPM = 80, 450
MAX_LINE_CHARS = 40  # longer sentences are cut at clause punctuation for subtitles

# A sentence: up to sentence-final punctuation (plus closing quotes) followed by
# whitespace, a line break, or the end. "3.14" stays whole.
_SENTENCE = re.compile(r"\S.*?(?:[.!?。！？…]+[\"'”’」』)\]]*(?=\s|$)|(?=\n)|$)", re.S)
_CLAUSE_BREAK = re.compile(r"(?<=[,;:，、])\s+")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_EDGE_VOICE = re.compile(r"^([a-z]{2,3})-([A-Z]{2,})-.*Neural$")


class EspeakOptions(TTSOptions):
    """espeak settings. ``voice=None`` = ``ko`` for Hangul text, else ``en-us``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voice: str | None = None
    workers: int | None = Field(None, ge=1, le=64)

    @field_validator("voice")
    @classmethod
    def _voice(cls, v: str | None) -> str | None:
        v = v.strip() if v else None
        return v or None


def pick_voice(voice: str | None, text: str) -> str:
    """The espeak voice to use for ``text`` (see the module docstring)."""
    if voice is None:
        return "ko" if _HANGUL.search(text) else "en-us"
    m = _EDGE_VOICE.match(voice)
    if m:
        lang, region = m.group(1), m.group(2)
        return "en-us" if (lang, region) == ("en", "US") else lang
    return voice


def split_segments(text: str, max_chars: int = MAX_LINE_CHARS) -> list[str]:
    """Cut ``text`` into subtitle-sized pieces: sentences, long ones at commas.

    A clause longer than ``max_chars`` stays whole: cutting it at a space would
    put an unnatural pause in the middle of a phrase.
    """
    out: list[str] = []
    for m in _SENTENCE.finditer(text):
        sentence = " ".join(m.group(0).split())
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        current = ""
        for clause in _CLAUSE_BREAK.split(sentence):
            if current and len(current) + 1 + len(clause) > max_chars:
                out.append(current)
                current = clause
            else:
                current = f"{current} {clause}" if current else clause
        if current:
            out.append(current)
    return out


# --------------------------------------------------------------------------
# Parent side.


class EspeakBackend(TTSBackend):
    """Offline espeak-ng narration in worker processes (draft quality)."""

    name = "espeak"
    Options = EspeakOptions
    options: EspeakOptions

    def __init__(self, options: EspeakOptions | None = None) -> None:
        super().__init__(options)
        self.workers = self.options.workers or usable_cpus()
        #: One scene per worker process at a time; more would only queue.
        self.max_concurrency = self.workers
        self._pool: WorkerPool | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> EspeakBackend:
        """Voice, rate, timeout and ``tts_workers`` from the settings."""
        return cls(
            EspeakOptions(
                voice=settings.voice, rate=settings.rate, timeout=settings.tts_timeout, workers=settings.tts_workers
            )
        )

    def fingerprint(self) -> dict[str, Any]:
        """Voice and rate (the worker count does not change the audio)."""
        fp = super().fingerprint()
        fp.pop("workers", None)
        return fp

    def __repr__(self) -> str:
        return f"EspeakBackend(voice={self.options.voice!r}, rate={self.options.rate}, workers={self.workers})"

    def _get_pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(worker_command(), self.workers, name="espeak")
        return self._pool

    async def unknown_voices(self, voices: Collection[str]) -> dict[str, list[str]]:
        """Voices (after the edge-name mapping of :func:`pick_voice`) with no language or variant file."""
        languages, variants = await asyncio.to_thread(_espeak_voice_names)
        unknown: dict[str, list[str]] = {}
        for voice in voices:
            name, _, variant = pick_voice(voice, "").partition("+")
            if name.lower() not in languages:
                unknown[voice] = difflib.get_close_matches(name.lower(), sorted(languages), n=3, cutoff=0.6)
            elif variant and variant not in variants:
                unknown[voice] = [f"{name}+{v}" for v in difflib.get_close_matches(variant, sorted(variants), n=3)]
        return unknown

    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        """Speak ``request.text`` into ``request.dest`` (MP3, 24 kHz mono) with one cue per sentence."""
        text, dest = request.text, request.dest
        segments = split_segments(text)
        if not segments:
            raise PermanentError("espeak: the narration text is empty")
        voice = pick_voice(self.voice_for(request), text)
        wpm = max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * self.rate_for(request))))
        mp3, duration, cues = await self._render(segments, voice, wpm)
        if not mp3:
            raise PermanentError(f"espeak produced no audio for this text (voice {voice!r})")
        with atomic_path(dest) as tmp:
            tmp.write_bytes(mp3)
        return SpeechResult(duration=duration, cues=[Cue(s, e, t) for s, e, t in cues])

    async def _render(self, segments: list[str], voice: str, wpm: int) -> tuple[bytes, float, list[Any]]:
        """One request to a worker: ``(mp3, duration, cues)``, or the worker's error raised here."""
        request = {"segments": segments, "voice": voice, "wpm": wpm}
        try:
            reply, mp3 = await self._get_pool().call(request, timeout=self.options.timeout)
        except TimeoutError:
            raise JobTimeoutError(f"espeak did not finish within {self.options.timeout:g} s") from None
        except WorkerDied as exc:
            # Killed, out of memory, crashed: its call is retried, a fresh worker takes its place.
            raise TransientError(f"an espeak worker process died: it {exc}") from exc
        if not reply.get("ok"):
            raise _ERROR_KINDS.get(str(reply.get("kind")), PermanentError)(str(reply.get("message")))
        return mp3, float(reply["duration"]), [tuple(c) for c in reply["cues"]]

    async def aclose(self) -> None:
        """Stop the worker processes."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()
