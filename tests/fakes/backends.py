"""In-process fake backends for stage tests (no servers needed)."""

from __future__ import annotations

import asyncio
from collections import Counter

from sceneforge.errors import TransientError
from sceneforge.events import Reporter, null_report
from sceneforge.fsutil import atomic_path
from sceneforge.tts.base import Cue, SpeechRequest, SpeechResult, TTSBackend, tts_registry


@tts_registry.register("fake")
class FakeTTS(TTSBackend):
    """Writes a small file per text; can be told to fail a scene's text N times."""

    calls: Counter[str] = Counter()
    fail_times: dict[str, int] = {}
    write_nothing: set[str] = set()
    with_words: set[str] = set()  # texts for which the engine reports word timings

    @classmethod
    def reset(cls) -> None:
        cls.calls = Counter()
        cls.fail_times = {}
        cls.write_nothing = set()
        cls.with_words = set()

    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        text, dest = request.text, request.dest
        type(self).calls[text] += 1
        await asyncio.sleep(0)
        if self.fail_times.get(text, 0) > 0:
            self.fail_times[text] -= 1
            raise TransientError(f"engine busy for {text!r}")
        if text in self.write_nothing:
            return SpeechResult(duration=0.0)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"MP3" + text.encode() * 10)
        d = len(text) / 10
        words = [Cue(k * 0.1, k * 0.1 + 0.08, w) for k, w in enumerate(text.split())] if text in self.with_words else []
        return SpeechResult(duration=d, cues=[Cue(0.0, d, text)], words=words)
