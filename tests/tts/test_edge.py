"""The edge-tts backend against a local fake of Microsoft's websocket service."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import edge_tts.communicate
import pytest
from mutagen.mp3 import MP3

from fakes.tts_servers import EDGE_SECONDS_PER_WORD, FakeEdgeServer
from sceneforge.backend import BackendResources
from sceneforge.config import Settings
from sceneforge.errors import ConfigError, JobTimeoutError, TransientError
from sceneforge.retry import is_retryable
from sceneforge.tts.base import SpeechRequest, format_srt, tts_registry
from sceneforge.tts.edge import EdgeBackend, EdgeOptions, rate_to_percent

ORIGINAL_URL = edge_tts.communicate.WSS_URL
TEXT = "Hello world, this is a test. Second sentence here & there, and a much longer line that goes on."


@pytest.fixture
async def edge() -> AsyncIterator[FakeEdgeServer]:
    async with FakeEdgeServer() as srv:
        yield srv
    assert edge_tts.communicate.WSS_URL == ORIGINAL_URL  # the override never leaks


def _backend(srv: FakeEdgeServer, **kw: object) -> EdgeBackend:
    return EdgeBackend(EdgeOptions(url=srv.url, **kw))  # type: ignore[arg-type]


def _nothing_written(folder: Path) -> bool:
    return not any(folder.iterdir())


def test_rate_strings() -> None:
    assert [rate_to_percent(r) for r in (1.0, 1.25, 0.8, 2.0, 0.5)] == ["+0%", "+25%", "-20%", "+100%", "-50%"]


def test_settings_and_fingerprint() -> None:
    assert tts_registry.get("edge") is EdgeBackend
    b = EdgeBackend.from_settings(Settings(edge_url="ws://127.0.0.1:1/x?a=b", rate=1.1, tts_timeout=7), BackendResources.none())
    assert b.options.voice == "ko-KR-InJoonNeural"
    assert (b.options.url, b.options.timeout) == ("ws://127.0.0.1:1/x?a=b", 7)
    assert b.fingerprint() == {"engine": "edge", "voice": "ko-KR-InJoonNeural", "rate": 1.1}
    assert b.max_concurrency == 3
    with pytest.raises(ValueError, match="the edge-tts URL must start with ws:// or wss://"):
        EdgeOptions(url="http://example.com")


async def test_writes_mp3_with_word_cues(edge: FakeEdgeServer, tmp_path: Path) -> None:
    dest = tmp_path / "scene_1.mp3"
    result = await _backend(edge).synthesize(SpeechRequest(1, TEXT, dest))
    n_words = len(TEXT.replace("&", "").split())
    assert MP3(str(dest)).info.sample_rate == 24_000
    assert result.duration == pytest.approx(n_words * EDGE_SECONDS_PER_WORD + 0.1, abs=0.1)
    assert [c.text for c in result.cues] == [
        "Hello world, this is a test.",
        "Second sentence here & there,",
        "and a much longer line that goes on.",
    ]
    assert result.cues[0].start == pytest.approx(0.05)
    assert result.cues[-1].end <= result.duration
    assert "00:00:00,050 --> 00:00:01,800\nHello world, this is a test." in format_srt(result.cues)
    assert [p.name for p in tmp_path.iterdir()] == ["scene_1.mp3"]  # no temporaries left
    # every WordBoundary is kept as a word (the narration step writes them to audio_scene_N.words.json)
    assert len(result.words) == n_words and result.words[0].text == "Hello" and result.words[0].start == pytest.approx(0.05)
    assert all(a.start <= b.start for a, b in zip(result.words, result.words[1:]))


async def test_voice_and_rate_are_sent_in_the_ssml(edge: FakeEdgeServer, tmp_path: Path) -> None:
    await _backend(edge, voice="ko-KR-SunHiNeural", rate=0.8).synthesize(SpeechRequest(1, "안녕하세요. 반갑습니다.", tmp_path / "a.mp3"))
    req = edge.requests[-1]
    assert req["voice"] == "Microsoft Server Speech Text to Speech Voice (ko-KR, SunHiNeural)"
    assert req["rate"] == "-20%"
    assert req["text"] == "안녕하세요. 반갑습니다."
    assert '"wordBoundaryEnabled":"true"' in req["messages"][0]  # word timings were asked for


async def test_hang_times_out_quickly_and_writes_nothing(edge: FakeEdgeServer, tmp_path: Path, deadlines) -> None:
    edge.fail("hang")
    with pytest.raises(JobTimeoutError) as info:
        await _backend(edge, timeout=0.2).synthesize(SpeechRequest(1, TEXT, tmp_path / "scene.mp3"))
    # Ended by the call's own 0.2 s deadline, not by edge-tts's receive timeout (1 s at the least).
    assert deadlines.armed == [("sceneforge.tts.edge", 0.2)] and deadlines.expired() == [True]
    assert is_retryable(info.value)
    assert _nothing_written(tmp_path)  # neither a 0-byte MP3 nor a .part


async def test_failure_keeps_the_previous_file(edge: FakeEdgeServer, tmp_path: Path) -> None:
    dest = tmp_path / "scene.mp3"
    dest.write_bytes(b"old")
    edge.fail("hang")
    with pytest.raises(JobTimeoutError):
        await _backend(edge, timeout=0.2).synthesize(SpeechRequest(1, TEXT, dest))
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["scene.mp3"]


@pytest.mark.parametrize(
    ("fault", "message"),
    [("no_audio", "no audio"), ("close_early", "ended early"), ("reject", "HTTP 503")],
)
async def test_broken_streams_are_transient_and_write_nothing(
    edge: FakeEdgeServer, tmp_path: Path, fault: str, message: str
) -> None:
    edge.fail(fault)
    with pytest.raises(TransientError, match=message) as info:
        await _backend(edge).synthesize(SpeechRequest(1, TEXT, tmp_path / "scene.mp3"))
    assert is_retryable(info.value)
    assert _nothing_written(tmp_path)


async def test_recovers_after_a_fault(edge: FakeEdgeServer, tmp_path: Path) -> None:
    edge.fail("no_audio", times=1)
    b = _backend(edge)
    with pytest.raises(TransientError):
        await b.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert (await b.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))).duration > 1


async def test_unreachable_server_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = EdgeBackend(EdgeOptions(url=f"ws://127.0.0.1:{port}/edge/v1?x=1", timeout=5))
    with pytest.raises(TransientError, match="unreachable"):
        await b.synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert _nothing_written(tmp_path)
    assert edge_tts.communicate.WSS_URL == ORIGINAL_URL


async def test_bad_voice_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="voice") as info:
        await EdgeBackend(EdgeOptions(voice="ko")).synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3"))
    assert not is_retryable(info.value)


async def test_concurrent_scenes_share_the_url(edge: FakeEdgeServer, tmp_path: Path) -> None:
    b = _backend(edge)
    texts = ["One two three.", TEXT, "안녕하세요. 반갑습니다."]
    results = await asyncio.gather(*(b.synthesize(SpeechRequest(1, t, tmp_path / f"{i}.mp3")) for i, t in enumerate(texts)))
    assert results[1].duration > results[0].duration
    assert len(edge.requests) == 3
    assert edge_tts.communicate.WSS_URL == ORIGINAL_URL


async def test_a_second_url_while_one_is_in_use_is_refused(edge: FakeEdgeServer, tmp_path: Path) -> None:
    edge.fail("hang")
    async with FakeEdgeServer() as other:
        first = asyncio.create_task(_backend(edge, timeout=0.3).synthesize(SpeechRequest(1, TEXT, tmp_path / "a.mp3")))
        while not edge.requests:  # wait until the first call is connected
            await asyncio.sleep(0.01)
        with pytest.raises(ConfigError, match="different URLs"):
            await _backend(other).synthesize(SpeechRequest(1, TEXT, tmp_path / "b.mp3"))
        with pytest.raises(JobTimeoutError):
            await first
        # Once the first call is over, the other URL works.
        assert (await _backend(other).synthesize(SpeechRequest(1, TEXT, tmp_path / "b.mp3"))).duration > 1
