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
* **Processes.** libespeak-ng keeps global state and is not thread-safe, so
  synthesis runs in a ``spawn`` process pool (``workers`` processes, default
  the CPUs this process may use, at most 64), created on first use; each worker initializes espeak once.
  Spawned workers import the main module, so a script driving this backend
  needs the usual ``if __name__ == "__main__":`` guard. A call that times out
  cannot interrupt its worker: the job finishes there and its result is dropped.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from ..errors import ConfigError, GenerationError, JobTimeoutError, PermanentError, TransientError
from ..events import Reporter, null_report
from ..fsutil import atomic_path
from .base import Cue, SpeechRequest, SpeechResult, TTSBackend, TTSOptions
from .mp3 import encode_mp3

__all__ = ["EspeakOptions", "EspeakBackend", "pick_voice", "split_segments"]


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
# Worker side: runs only inside the pool's processes.

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a sentence pause after each piece, as in running text
_EE_OK, _EE_NOT_FOUND = 0, 2
_PARAM_RATE = 1


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h (the union is pointer-sized).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """libespeak-ng loaded and initialized once in this process."""

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        # The wheel's compiled-in data path is its builder's: always pass ours.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise GenerationError(f"espeak-ng failed to initialize with data at {self.data_path}")
        self.rate = rate
        self.lib = lib
        self._chunks: list[bytes] = []
        self._callback = _Callback(self._collect)  # kept alive as long as the engine
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _collect(self, wav: Any, n: int, events: Any) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0  # 0 = keep going

    def set_voice(self, voice: str, wpm: int) -> None:
        if voice != self._voice:
            self._voice = None  # a failed switch may leave espeak on another voice
            name, _, variant = voice.partition("+")
            # espeak silently ignores unknown variants; check the file ourselves.
            if variant and not (Path(self.data_path) / "voices" / "!v" / variant).is_file():
                raise ConfigError(f"espeak voice {voice!r}: unknown variant {variant!r} (try f1-f5 or m1-m8)")
            err = self.lib.espeak_SetVoiceByName(voice.encode())
            if err != _EE_OK or not name:
                raise ConfigError(
                    f"espeak has no voice {voice!r}; use a language code such as 'ko', 'en', 'en-us' "
                    "(variants like 'ko+f3'), or leave the voice unset"
                )
            self._voice = voice
        self.lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)

    def synth(self, text: str) -> bytes:
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        if err != _EE_OK:
            raise TransientError(f"espeak_Synth failed with code {err}")
        return b"".join(self._chunks)


_engine: _Engine | None = None


def _render(segments: list[str], voice: str, wpm: int) -> tuple[bytes, float, list[tuple[float, float, str]]]:
    """Synthesize ``segments`` one after another: MP3 bytes, duration, cue tuples.

    Runs in a worker process; returns bytes so the parent does the atomic write
    (a cancelled call must never produce a file later).
    """
    global _engine
    if _engine is None:
        _engine = _Engine()
    _engine.set_voice(voice, wpm)
    pcm: list[bytes] = []
    cues: list[tuple[float, float, str]] = []
    samples = 0
    for seg in segments:
        audio = _engine.synth(seg)
        n = len(audio) // 2
        if n:
            cues.append((samples / _engine.rate, (samples + n) / _engine.rate, seg))
        samples += n
        pcm.append(audio)
    if samples == 0:
        return b"", 0.0, []
    return encode_mp3(b"".join(pcm), _engine.rate), samples / _engine.rate, cues


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
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Any, resources: Any = None) -> EspeakBackend:
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

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: forking a process that runs an asyncio loop (and maybe threads) is unsafe.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        """Speak ``request.text`` into ``request.dest`` (MP3, 24 kHz mono) with one cue per sentence."""
        text, dest = request.text, request.dest
        segments = split_segments(text)
        if not segments:
            raise PermanentError("espeak: the narration text is empty")
        voice = pick_voice(self.voice_for(request), text)
        wpm = max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * self.rate_for(request))))
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.options.timeout):
                mp3, duration, cues = await loop.run_in_executor(self._get_pool(), _render, segments, voice, wpm)
        except TimeoutError:
            raise JobTimeoutError(f"espeak did not finish within {self.options.timeout:g} s") from None
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory): start a fresh pool next time.
            self._drop_pool()
            # (A script that starts sceneforge without an ``if __name__ == "__main__":``
            # guard also ends here: spawned workers re-import the main module.)
            raise TransientError(f"an espeak worker process died: {exc}") from exc
        if not mp3:
            raise PermanentError(f"espeak produced no audio for this text (voice {voice!r})")
        with atomic_path(dest) as tmp:
            tmp.write_bytes(mp3)
        return SpeechResult(duration=duration, cues=[Cue(s, e, t) for s, e, t in cues])

    def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the worker processes."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
