"""The offline espeak backend: real libespeak-ng in worker processes, real MP3."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutagen.mp3 import MP3

import sceneforge.tts.espeak as espeak_mod
from sceneforge.backend import BackendResources
from sceneforge.config import Settings
from sceneforge.errors import ConfigError, GenerationError
from sceneforge.retry import is_retryable
from sceneforge.tts.base import SpeechRequest, mp3_duration, tts_registry
from sceneforge.tts.espeak import EspeakBackend, EspeakOptions, pick_voice

EN_SHORT = "Hello world."
EN_LONG = "Hello world. This is a much longer narration. It has three sentences, and more words to say."
KO_SHORT = "안녕하세요."
KO_LONG = "안녕하세요. 오늘은 바다 이야기를 해 보겠습니다. 파도가 천천히 밀려옵니다."


@pytest.fixture(scope="module")
def backend() -> Iterator[EspeakBackend]:
    # One pool for the module: spawning workers is the slow part (~0.3 s).
    b = EspeakBackend(EspeakOptions(workers=2))
    yield b
    asyncio.run(b.aclose())


def _assert_clean(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_registered_and_settings() -> None:
    assert tts_registry.get("espeak") is EspeakBackend
    b = EspeakBackend.from_settings(Settings(voice="ko+f3", rate=1.5, tts_workers=3, tts_timeout=9), BackendResources.none())
    assert b.options == EspeakOptions(voice="ko+f3", rate=1.5, timeout=9, workers=3)
    assert b.max_concurrency == 3
    assert b.fingerprint() == {"engine": "espeak", "voice": "ko+f3", "rate": 1.5}
    default = EspeakBackend.from_settings(Settings(), BackendResources.none())
    assert default.max_concurrency == (os.cpu_count() or 1)
    with pytest.raises(ValueError, match=r"pitch\n +Extra inputs are not permitted"):
        EspeakOptions(pitch=3)  # strict options


def test_voice_pick() -> None:
    assert pick_voice(None, "Hello there") == "en-us"
    assert pick_voice(None, "Hello 안녕") == "ko"
    assert pick_voice("ko-KR-InJoonNeural", "x") == "ko"  # Settings.voice shared with edge
    assert pick_voice("en-US-EmmaMultilingualNeural", "x") == "en-us"
    assert pick_voice("en+m3", "안녕") == "en+m3"


@pytest.mark.parametrize(("short", "long"), [(EN_SHORT, EN_LONG), (KO_SHORT, KO_LONG)], ids=["english", "korean"])
async def test_mp3_with_duration_and_cues(backend: EspeakBackend, tmp_path: Path, short: str, long: str) -> None:
    a, b = tmp_path / "short.mp3", tmp_path / "long.mp3"
    ra = await backend.synthesize(SpeechRequest(1, short, a))
    rb = await backend.synthesize(SpeechRequest(1, long, b))
    info = MP3(str(b)).info
    assert (info.sample_rate, info.channels) == (24_000, 1)  # edge-tts's format, so joins can stream-copy
    assert 0.5 < ra.duration < rb.duration
    assert rb.duration > 2 * ra.duration
    # The PCM length and the MP3 agree (LAME adds only encoder delay/padding).
    assert abs(mp3_duration(b) - rb.duration) < 0.15
    # One cue per sentence, back to back, ending with the audio.
    assert [c.text for c in rb.cues] == espeak_mod.split_segments(long)
    assert rb.cues[0].start == 0.0
    assert all(x.end == y.start for x, y in zip(rb.cues, rb.cues[1:]))
    assert rb.cues[-1].end == pytest.approx(rb.duration)
    _assert_clean(tmp_path)


async def test_faster_rate_is_shorter(backend: EspeakBackend, tmp_path: Path) -> None:
    fast_backend = EspeakBackend(EspeakOptions(rate=2.0, workers=1))
    try:
        fast = await fast_backend.synthesize(SpeechRequest(1, EN_LONG, tmp_path / "fast.mp3"))
    finally:
        await fast_backend.aclose()
    normal = await backend.synthesize(SpeechRequest(1, EN_LONG, tmp_path / "normal.mp3"))
    assert 0.3 * normal.duration < fast.duration < 0.75 * normal.duration  # 350 vs 175 words a minute


@pytest.mark.parametrize("voice", ["xx-nope", "ko+zz"])
async def test_unknown_voice_is_a_clear_permanent_error(tmp_path: Path, voice: str) -> None:
    b = EspeakBackend(EspeakOptions(voice=voice, workers=1))
    try:
        with pytest.raises(ConfigError, match="voice") as info:
            await b.synthesize(SpeechRequest(1, EN_SHORT, tmp_path / "x.mp3"))
        # The worker survives a bad voice and still works with a good one.
        ok = EspeakBackend(EspeakOptions(voice="en", workers=1))
        ok._pool = b._pool  # same worker process
        assert (await ok.synthesize(SpeechRequest(1, EN_SHORT, tmp_path / "ok.mp3"))).duration > 0.5
    finally:
        await b.aclose()
    assert not is_retryable(info.value)
    assert not (tmp_path / "x.mp3").exists()
    _assert_clean(tmp_path)


async def test_empty_text_is_permanent(backend: EspeakBackend, tmp_path: Path) -> None:
    with pytest.raises(GenerationError) as info:
        await backend.synthesize(SpeechRequest(1, "  \n ", tmp_path / "x.mp3"))
    assert not is_retryable(info.value)
    assert not (tmp_path / "x.mp3").exists()


async def test_scenes_run_concurrently_in_worker_processes(backend: EspeakBackend, tmp_path: Path) -> None:
    texts = [EN_LONG, KO_LONG, EN_SHORT, KO_SHORT]
    results = await asyncio.gather(*(backend.synthesize(SpeechRequest(1, t, tmp_path / f"{i}.mp3")) for i, t in enumerate(texts)))
    for i, r in enumerate(results):
        assert abs(mp3_duration(tmp_path / f"{i}.mp3") - r.duration) < 0.15
    assert results[0].duration > results[2].duration
    assert results[1].duration > results[3].duration
    # The work happened in two worker processes, not in this one.
    assert len(backend._pool.pids) == 2 and os.getpid() not in backend._pool.pids
    _assert_clean(tmp_path)
