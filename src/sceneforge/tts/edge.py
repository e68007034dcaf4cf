"""Narration with edge-tts (Microsoft Edge's online read-aloud voices).

* The whole call runs under ``asyncio.timeout(options.timeout)``: a server that
  accepts the websocket and then goes silent makes edge-tts wait forever.
* Audio goes to a temporary file (:func:`~sceneforge.fsutil.atomic_path`), so a
  failure never leaves a 0-byte MP3 (``Communicate.save`` would).
* Subtitle cues come from WordBoundary events, grouped into lines of at most
  :data:`MAX_LINE_CHARS` characters that also break at sentence ends.
* ``url`` overrides the endpoint. edge-tts reads the module global
  ``edge_tts.communicate.WSS_URL`` when it connects, so the override sets that
  global for the duration of the call and restores it afterwards (reference
  counted). Concurrent calls may share one URL; a call with a *different* URL
  while others run raises :class:`~sceneforge.errors.ConfigError`, because a
  process-wide global cannot point to two servers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl
from pydantic import ConfigDict, field_validator

from ..config import redact_url
from ..errors import ConfigError, JobTimeoutError, ServerUnavailableError, TransientError
from ..events import Reporter, null_report
from ..fsutil import atomic_path
from .base import Cue, SpeechRequest, SpeechResult, TTSBackend, TTSOptions, mp3_duration

if TYPE_CHECKING:
    from ..backend import BackendResources
    from ..config import Settings

__all__ = ["EdgeOptions", "EdgeBackend", "DEFAULT_VOICE", "rate_to_percent", "words_to_cues", "fetch_voice_list"]

DEFAULT_VOICE = "ko-KR-InJoonNeural"
MAX_LINE_CHARS = 40
TICKS_PER_SECOND = 10_000_000  # edge-tts offsets/durations are in 100 ns ticks
_SENTENCE_END = re.compile(r"[.!?。！？…]|\n")
_CLAUSE_END = re.compile(r"[,;:，、]")
_WORD = re.compile(r"\w+")
TRUNCATION_WORDS = 2  # this many unspoken words = the stream was cut short


class EdgeOptions(TTSOptions):
    """edge-tts settings: a voice name like ``ko-KR-SunHiNeural`` and an optional endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voice: str = DEFAULT_VOICE
    url: str | None = None  # websocket endpoint override (tests, proxies); None = Microsoft's

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("the edge-tts URL must start with ws:// or wss://")
        return v


def rate_to_percent(rate: float) -> str:
    """A speed multiplier as edge-tts's rate string: 1.25 -> ``+25%``, 0.8 -> ``-20%``."""
    return f"{round((rate - 1.0) * 100):+d}%"


# --- endpoint override -----------------------------------------------------

_url_lock = threading.Lock()
_url_users = 0
_url_saved: str | None = None
_url_active: str | None = None


@contextlib.contextmanager
def _endpoint(url: str | None) -> Iterator[None]:
    """Point edge-tts at ``url`` while the block runs (no-op for ``None``)."""
    global _url_users, _url_saved, _url_active
    if url is None:
        yield
        return
    import edge_tts.communicate as comm

    # edge-tts appends "&ConnectionId=..." to the URL, so it needs a query already.
    full = url if "?" in url else url + "?"
    with _url_lock:
        if _url_users and _url_active != full:
            raise ConfigError("edge-tts calls with different URLs cannot run at the same time in one process")
        if _url_users == 0:
            _url_saved, _url_active = comm.WSS_URL, full
            comm.WSS_URL = full
        _url_users += 1
    try:
        yield
    finally:
        with _url_lock:
            _url_users -= 1
            if _url_users == 0:
                comm.WSS_URL = _url_saved  # type: ignore[assignment]
                _url_active = None


# --- voices ------------------------------------------------------------------

#: The largest voice list read (Microsoft's is about 300 KB).
_MAX_VOICE_LIST = 4 * 1024 * 1024


def voices_url(ws_url: str) -> str:
    """The voice-list URL of the service behind a websocket endpoint (same host, ``.../voices/list``)."""
    url = yarl.URL(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    path = url.path.rsplit("/edge/", 1)[0] + "/voices/list" if "/edge/" in url.path else "/voices/list"
    return str(url.with_scheme(scheme).with_path(path).with_query({"trustedclienttoken": "sceneforge"}))


async def _voices_at(ws_url: str) -> list[Any]:
    async with aiohttp.ClientSession() as session, session.get(voices_url(ws_url)) as resp:
        resp.raise_for_status()
        body = await resp.content.read(_MAX_VOICE_LIST + 1)
    if len(body) > _MAX_VOICE_LIST:
        raise ValueError("voice list too large")
    data = json.loads(body)
    if not isinstance(data, list):
        raise ValueError("not a voice list")
    return data


async def _voices_from_edge_tts() -> list[Any]:
    import edge_tts

    return list(await edge_tts.list_voices())


async def fetch_voice_list(url: str | None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The service's voice list as it answers it (``ShortName``, ``Locale``, ``Gender`` ...): from the
    host of the endpoint override ``url`` (``.../voices/list``), else through edge-tts; at most
    ``timeout`` seconds. :class:`ServerUnavailableError` saying why when it cannot be had."""
    where = redact_url(voices_url(url)) if url else "Microsoft's voice list"
    try:
        async with asyncio.timeout(timeout):
            voices = await (_voices_at(url) if url else _voices_from_edge_tts())
    except TimeoutError:
        raise ServerUnavailableError(f"edge-tts: {where} did not answer within {timeout:g} s") from None
    except (aiohttp.ClientError, OSError, ValueError, TypeError, KeyError) as exc:
        raise ServerUnavailableError(f"edge-tts: cannot read {where}: {exc or type(exc).__name__}") from None
    return [v for v in voices if isinstance(v, dict) and isinstance(v.get("ShortName"), str)]


# --- cues --------------------------------------------------------------------


def _align(text: str, words: list[tuple[float, float, str]]) -> list[tuple[int, int]]:
    """Character spans of ``words`` in ``text``, in order; ``[]`` if any is missing."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for _, _, w in words:
        i = text.find(w, pos)
        if i < 0:
            return []
        spans.append((i, i + len(w)))
        pos = i + len(w)
    return spans


def unspoken_words(text: str, words: list[tuple[float, float, str]]) -> int:
    """How many words of ``text`` follow the last word the service reported.

    edge-tts ends a stream quietly when the websocket closes before turn.end, so
    a dropped connection looks like success with truncated audio; the word
    boundaries tell. ``0`` when there are no boundaries or they cannot be
    aligned with the text (no evidence either way).
    """
    spans = _align(text, words)
    if not spans:
        return 0
    return len(_WORD.findall(text[spans[-1][1] :]))


def words_to_cues(text: str, words: list[tuple[float, float, str]], max_chars: int = MAX_LINE_CHARS) -> list[Cue]:
    """Group word timings ``(start, end, word)`` into subtitle lines.

    Words are located in ``text`` so lines keep the original punctuation
    (WordBoundary events carry bare words) and break after sentence-final
    punctuation (or at a comma once the line is half full). If a word cannot be found (the service normalized it), lines
    are built from the bare words and break on length only.
    """
    if not words:
        return []
    spans = _align(text, words)

    groups: list[list[int]] = [[0]]
    for k in range(1, len(words)):
        first = groups[-1][0]
        if spans:
            between = text[spans[k - 1][1] : spans[k][0]]
            so_far = spans[k - 1][1] - spans[first][0]
            # Break at a sentence end, or at a comma once the line is half full.
            natural = bool(_SENTENCE_END.search(between)) or (
                so_far >= max_chars // 2 and bool(_CLAUSE_END.search(between))
            )
            length = spans[k][1] - spans[first][0]
        else:
            natural = False
            length = sum(len(words[j][2]) + 1 for j in range(first, k + 1)) - 1
        if natural or length > max_chars:
            groups.append([k])
        else:
            groups[-1].append(k)

    cues: list[Cue] = []
    for gi, g in enumerate(groups):
        if spans:
            # Up to the next line's first word, so trailing punctuation stays on this line.
            stop = spans[groups[gi + 1][0]][0] if gi + 1 < len(groups) else len(text)
            line = " ".join(text[spans[g[0]][0] : stop].split())
        else:
            line = " ".join(words[j][2] for j in g)
        cues.append(Cue(words[g[0]][0], words[g[-1]][1], line))
    return cues


# --- backend -------------------------------------------------------------------


class EdgeBackend(TTSBackend):
    """Microsoft Edge online voices through edge-tts (default ``ko-KR-InJoonNeural``)."""

    name = "edge"
    Options = EdgeOptions
    options: EdgeOptions
    max_concurrency = 3  # the free endpoint throttles busy clients

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> EdgeBackend:
        """Voice (default ``ko-KR-InJoonNeural``), rate, timeout and ``edge_url``."""
        kw: dict[str, Any] = {"rate": settings.rate, "timeout": settings.tts_timeout, "url": settings.edge_url}
        if settings.voice:
            kw["voice"] = settings.voice
        return cls(EdgeOptions(**kw))

    def fingerprint(self) -> dict[str, Any]:
        """Voice and rate (the endpoint does not change the audio)."""
        fp = super().fingerprint()
        fp.pop("url", None)
        return fp

    def __repr__(self) -> str:
        return f"EdgeBackend(voice={self.options.voice!r}, rate={self.options.rate})"

    async def list_voices(self) -> list[str] | None:
        """The service's voice names (``ko-KR-SunHiNeural`` ...), or None when it cannot be asked.

        With an endpoint override the list comes from the same host (``.../voices/list``, the
        path Microsoft's service uses); otherwise through edge-tts. At most 10 s.
        """
        try:
            voices = await fetch_voice_list(self.options.url, min(10.0, self.options.timeout))
        except ServerUnavailableError:
            return None  # no network: the voice is checked when the scene is spoken
        return [str(v["ShortName"]) for v in voices]

    def _communicate(self, text: str, voice: str, rate: float) -> Any:
        import edge_tts

        secs = max(1, math.ceil(self.options.timeout))
        try:
            return edge_tts.Communicate(
                text,
                voice,
                rate=rate_to_percent(rate),
                boundary="WordBoundary",  # 7.x defaults to sentences; words give better subtitles
                connect_timeout=min(secs, 10),
                receive_timeout=secs,
            )
        except ValueError as exc:  # bad voice or rate format: fixing it needs the user
            raise ConfigError(f"edge-tts: {exc} (voices look like 'ko-KR-SunHiNeural')") from None

    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        """Stream ``request.text`` from the service into ``request.dest``; cues from word boundaries."""
        text, dest = request.text, request.dest
        voice = self.voice_for(request) or DEFAULT_VOICE
        comm = self._communicate(text, voice, self.rate_for(request))
        words: list[tuple[float, float, str]] = []
        try:
            async with asyncio.timeout(self.options.timeout):
                with _endpoint(self.options.url), atomic_path(dest) as tmp:
                    size = 0
                    # Translated inside the atomic block: atomic_path reports any OSError
                    # (aiohttp's connection errors and read timeouts are OSErrors) as a
                    # failure to write the file.
                    with self._errors(voice), tmp.open("wb") as fh:
                        # aclosing: on timeout the websocket is closed now, not at GC.
                        async with contextlib.aclosing(comm.stream()) as chunks:
                            async for chunk in chunks:
                                if chunk["type"] == "audio":
                                    fh.write(chunk["data"])
                                    size += len(chunk["data"])
                                elif chunk["type"] == "WordBoundary":
                                    start = chunk["offset"] / TICKS_PER_SECOND
                                    words.append((start, start + chunk["duration"] / TICKS_PER_SECOND, chunk["text"]))
                    if size == 0:
                        raise TransientError(f"edge-tts returned no audio (voice {voice!r})")
                    missing = unspoken_words(text, words)
                    if missing >= TRUNCATION_WORDS:
                        raise TransientError(f"edge-tts stream ended early: the last {missing} words have no audio")
                    duration = mp3_duration(tmp)
        except TimeoutError:
            raise JobTimeoutError(f"edge-tts did not finish within {self.options.timeout:g} s") from None
        return SpeechResult(duration=duration, cues=words_to_cues(text, words),
                            words=[Cue(s, e, w) for s, e, w in words])

    @contextlib.contextmanager
    def _errors(self, voice: str) -> Iterator[None]:
        """edge-tts and aiohttp failures as sceneforge errors (all worth a retry)."""
        from edge_tts.exceptions import EdgeTTSException, NoAudioReceived

        try:
            yield
        except TimeoutError:  # aiohttp's read timeout (ServerTimeoutError is a TimeoutError)
            raise JobTimeoutError(f"edge-tts did not answer within {self.options.timeout:g} s") from None
        except NoAudioReceived:
            raise TransientError(f"edge-tts returned no audio (voice {voice!r}; is the voice name right?)") from None
        except EdgeTTSException as exc:
            raise TransientError(f"edge-tts protocol error: {type(exc).__name__}: {exc}") from exc
        except aiohttp.WSServerHandshakeError as exc:
            raise TransientError(f"edge-tts service refused the connection (HTTP {exc.status})") from exc
        except aiohttp.ClientConnectorError as exc:
            # aiohttp's own text drags in the SSL context's repr; say what a person needs.
            why = exc.strerror or type(exc.os_error).__name__
            raise TransientError(
                f"edge-tts service unreachable: cannot connect to {exc.host}:{exc.port} ({why}); "
                "no network? use --offline (espeak) or --tts openai"
            ) from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransientError(f"edge-tts service unreachable: {type(exc).__name__}: {exc}") from exc
