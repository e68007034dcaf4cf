"""The OpenAI-compatible speech backend against a local fake server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mutagen.mp3 import MP3

from fakes.tts_servers import OPENAI_SECONDS_PER_CHAR, FakeOpenAIServer
from sceneforge.backend import BackendResources
from sceneforge.config import Settings
from sceneforge.errors import GenerationError, JobTimeoutError, TransientError
from sceneforge.retry import AUDIO_RETRY, is_retryable, retry_async
from sceneforge.tts.base import SpeechRequest, tts_registry
from sceneforge.tts.openai import OpenAIBackend, OpenAIOptions

KEY = "sk-test-ultra-secret-0123456789"
TEXT = "The tide comes in slowly over the sand."


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
async def backend(server: FakeOpenAIServer) -> AsyncIterator[OpenAIBackend]:
    b = OpenAIBackend(OpenAIOptions(base_url=server.base_url, api_key=KEY, timeout=5))
    yield b
    await b.aclose()


def _no_key(*texts: str) -> None:
    for t in texts:
        assert KEY not in t


async def test_sends_the_request_and_writes_mp3(server: FakeOpenAIServer, tmp_path: Path) -> None:
    b = OpenAIBackend(
        OpenAIOptions(base_url=server.base_url + "/", api_key=KEY, model="kokoro", voice="af_bella", rate=1.25)
    )
    dest = tmp_path / "scene_1.mp3"
    try:
        result = await b.synthesize(SpeechRequest(1, TEXT, dest))
    finally:
        await b.aclose()
    req = server.requests[-1]
    assert req["path"] == "/v1/audio/speech"
    assert req["json"] == {"model": "kokoro", "input": TEXT, "voice": "af_bella", "response_format": "mp3", "speed": 1.25}
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    assert MP3(str(dest)).info.length == pytest.approx(result.duration)
    assert result.duration == pytest.approx(len(TEXT) * OPENAI_SECONDS_PER_CHAR / 1.25, abs=0.1)
    assert result.cues == []
    assert [p.name for p in tmp_path.iterdir()] == ["scene_1.mp3"]


async def test_no_key_sends_no_authorization(server: FakeOpenAIServer, tmp_path: Path) -> None:
    b = OpenAIBackend(OpenAIOptions(base_url=server.base_url))
    try:
        await b.synthesize(SpeechRequest(1, "hi", tmp_path / "a.mp3"))
    finally:
        await b.aclose()
    assert "Authorization" not in server.requests[-1]["headers"]


async def test_speed_is_clamped_to_the_api_range(server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path) -> None:
    slow = OpenAIBackend(OpenAIOptions(base_url=server.base_url, rate=0.15))
    try:
        await slow.synthesize(SpeechRequest(1, "hi", tmp_path / "a.mp3"))
    finally:
        await slow.aclose()
    assert server.requests[-1]["json"]["speed"] == 0.25


@pytest.mark.parametrize("fault", ["429", "503"])
async def test_busy_server_is_transient(server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path, fault: str) -> None:
    server.fail(fault)
    with pytest.raises(TransientError, match=f"HTTP {fault}") as info:
        await backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert is_retryable(info.value)
    if fault == "429":
        assert "Retry-After: 7" in str(info.value)
    assert not any(tmp_path.iterdir())


async def test_bad_request_is_not_retried(server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path) -> None:
    server.fail("400")
    with pytest.raises(GenerationError, match="Invalid voice: alloy") as info:
        await backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert not isinstance(info.value, TransientError)
    assert not is_retryable(info.value)
    assert not any(tmp_path.iterdir())


async def test_empty_body_is_transient_and_writes_nothing(
    server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path
) -> None:
    server.fail("empty")
    with pytest.raises(TransientError, match="empty") as info:
        await backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert is_retryable(info.value)
    assert not any(tmp_path.iterdir())  # no 0-byte file, no .part


async def test_a_non_audio_answer_is_permanent(server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path) -> None:
    server.fail("html")
    with pytest.raises(GenerationError, match="did not return MP3") as info:
        await backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert not is_retryable(info.value)
    assert not any(tmp_path.iterdir())


async def test_hang_times_out_quickly(server: FakeOpenAIServer, tmp_path: Path, deadlines) -> None:
    server.fail("hang")
    b = OpenAIBackend(OpenAIOptions(base_url=server.base_url, api_key=KEY, timeout=0.2))
    try:
        with pytest.raises(JobTimeoutError, match=r"did not answer within 0\.2 s") as info:
            await b.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    finally:
        await b.aclose()
    # The whole call ran under the one 0.2 s deadline, and that is what ended it (not a default HTTP timeout).
    assert deadlines.armed == [("sceneforge.tts.openai", 0.2)] and deadlines.expired() == [True]
    assert is_retryable(info.value)
    assert not any(tmp_path.iterdir())


async def test_unreachable_server_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend(OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY))
    try:
        with pytest.raises(TransientError, match="unreachable") as info:
            await b.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    finally:
        await b.aclose()
    _no_key(str(info.value))
    assert not any(tmp_path.iterdir())


async def test_the_key_never_leaks(server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path) -> None:
    server.fail("401")  # this server echoes the key in its error message
    with pytest.raises(GenerationError) as info:
        await backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert "Incorrect API key provided: ***" in str(info.value)
    assert not is_retryable(info.value)
    _no_key(str(info.value), repr(info.value), str(info.value.server_message), repr(backend), str(backend))
    _no_key(repr(backend.options), str(backend.fingerprint()), str(backend.options.model_dump(mode="json")))


def test_settings_and_fingerprint() -> None:
    assert tts_registry.get("openai") is OpenAIBackend
    s = Settings(openai_api_key=KEY, openai_base_url="http://localhost:8880/v1", openai_model="kokoro", rate=1.1)
    b = OpenAIBackend.from_settings(s, BackendResources.none())
    assert b.options.api_key is not None and b.options.api_key.get_secret_value() == KEY
    assert (b.options.voice, b.options.model, b.options.base_url) == ("alloy", "kokoro", "http://localhost:8880/v1")
    assert b.fingerprint() == {"engine": "openai", "voice": "alloy", "rate": 1.1, "model": "kokoro",
                               "server": "http://localhost:8880/v1"}  # another server: other audio
    assert b.max_concurrency == 4
    assert OpenAIBackend.from_settings(Settings(voice="nova"), BackendResources.none()).options.voice == "nova"
    with pytest.raises(ValueError, match=r"speed\n +Extra inputs are not permitted"):
        OpenAIOptions(speed=1.0)  # strict: rate is the only speed knob


async def test_one_session_reused_and_closed(server: FakeOpenAIServer, tmp_path: Path) -> None:
    b = OpenAIBackend(OpenAIOptions(base_url=server.base_url))
    await b.synthesize(SpeechRequest(1, "one", tmp_path / "1.mp3"))
    session = b._session
    await b.synthesize(SpeechRequest(1, "two", tmp_path / "2.mp3"))
    assert b._session is session
    await b.aclose()
    assert session is not None and session.closed


async def test_retry_policy_gets_through_rate_limits(
    server: FakeOpenAIServer, backend: OpenAIBackend, tmp_path: Path
) -> None:
    server.fail("429", times=2)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    result = await retry_async(lambda attempt: backend.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3")), AUDIO_RETRY, sleep=sleep)
    assert result.duration > 1
    assert waits == [1.0, 2.0]
    assert [r["fault"] for r in server.requests] == ["429", "429", None]
