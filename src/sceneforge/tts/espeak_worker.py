"""The espeak worker process: libespeak-ng loaded once, one synthesis request at a time.

Started by :class:`sceneforge.tts.espeak.EspeakBackend` through
:class:`~sceneforge.tts.pipe_pool.WorkerPool` as a plain file
(``python -P .../espeak_worker.py``): it never imports the parent's ``__main__``
(a user's script without a main guard runs once), nor the sceneforge package
(start-up is Python's plus espeak's, ~0.1 s instead of ~0.4 s). It needs only
the standard library, ``espeakng_loader``, ``lameenc`` and its siblings
``frames.py`` and ``mp3.py``, loaded by path.

Protocol (:mod:`~sceneforge.tts.frames`): a request ``{"segments": [...],
"voice": "ko", "wpm": 175}``; the reply ``{"ok": true, "duration": s, "cues":
[[start, end, text], ...]}`` with the MP3 as the blob, or ``{"ok": false,
"kind": "config"|"transient"|"generation", "message": ...}``. stdout carries
only replies: anything printed (by Python or by the C library) goes to stderr.
The worker exits when its stdin closes and ignores Ctrl-C (the parent stops it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

if __package__:
    from .frames import read_message, write_message
    from .mp3 import encode_mp3
else:  # started by path: load the siblings without importing sceneforge
    import importlib.util

    def _sibling(name: str) -> Any:
        spec = importlib.util.spec_from_file_location(f"_sceneforge_{name}", Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    _frames = _sibling("frames")
    read_message, write_message = _frames.read_message, _frames.write_message
    encode_mp3 = _sibling("mp3").encode_mp3

__all__ = ["WorkerError", "VoiceError", "SynthError", "render", "serve"]


class WorkerError(Exception):
    """A failure reported to the parent; ``kind`` picks the parent's exception class."""

    kind = "generation"


class VoiceError(WorkerError):
    """An unknown voice or variant (a setting: never retried)."""

    kind = "config"


class SynthError(WorkerError):
    """espeak_Synth failed (worth another try)."""

    kind = "transient"


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a sentence pause after each piece, as in running text
_EE_OK = 0
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
    """libespeak-ng loaded and initialized once in this process (it keeps global state)."""

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
            raise WorkerError(f"espeak-ng failed to initialize with data at {self.data_path}")
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
                raise VoiceError(f"espeak voice {voice!r}: unknown variant {variant!r} (try f1-f5 or m1-m8)")
            err = self.lib.espeak_SetVoiceByName(voice.encode())
            if err != _EE_OK or not name:
                raise VoiceError(
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
            raise SynthError(f"espeak_Synth failed with code {err}")
        return b"".join(self._chunks)


_engine: _Engine | None = None


def render(segments: list[str], voice: str, wpm: int) -> tuple[bytes, float, list[tuple[float, float, str]]]:
    """Synthesize ``segments`` one after another: MP3 bytes, duration, cue tuples.

    Returns bytes so the parent does the atomic write (a cancelled call must never
    produce a file later).
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


def _answer(request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    try:
        mp3, duration, cues = render(list(request["segments"]), str(request["voice"]), int(request["wpm"]))
    except WorkerError as exc:
        return {"ok": False, "kind": exc.kind, "message": str(exc)}, b""
    except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker lives on
        traceback.print_exc(file=sys.stderr)
        return {"ok": False, "kind": "generation", "message": f"{type(exc).__name__}: {exc}"}, b""
    return {"ok": True, "duration": duration, "cues": cues}, mp3


def serve(requests: Any, replies: Any) -> None:
    """Answer requests until ``requests`` closes."""
    while (msg := read_message(requests)) is not None:
        header, reply_blob = _answer(msg[0])
        write_message(replies, header, reply_blob)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints, even from C, cannot corrupt a reply
    sys.stdout = sys.stderr
    try:
        serve(sys.stdin.buffer, replies)
    except (BrokenPipeError, EOFError):
        pass  # the parent went away


if __name__ == "__main__":
    main()
