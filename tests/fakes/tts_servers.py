"""Local fake speech servers for narration tests (aiohttp.web on 127.0.0.1, port 0).

* :class:`FakeEdgeServer` speaks edge-tts's websocket protocol (see the shared
  NOTES): turn.start, one WordBoundary per word, binary MP3 frames, turn.end.
* :class:`FakeOpenAIServer` serves ``POST /v1/audio/speech``.

Both return real MP3 (lameenc, 24 kHz mono) whose length grows with the text,
log every request in ``requests``, and take faults with ``fail(name, times)``::

    async with FakeOpenAIServer() as srv:
        srv.fail("429", times=2)   # the next two requests get 429, then normal
"""

from __future__ import annotations

import asyncio
import json
import re
import string
import uuid
from typing import Any
from xml.sax.saxutils import escape, unescape

from aiohttp import WSMsgType, web

from sceneforge.tts.mp3 import OUTPUT_RATE, encode_mp3, tone_pcm

__all__ = ["FakeEdgeServer", "FakeOpenAIServer", "EDGE_SECONDS_PER_WORD", "OPENAI_SECONDS_PER_CHAR"]

EDGE_SECONDS_PER_WORD = 0.3
OPENAI_SECONDS_PER_CHAR = 0.05
_TICKS = 10_000_000
_PUNCT = string.punctuation + "。，、！？…「」『』“”‘’"


def _mp3(seconds: float) -> bytes:
    return encode_mp3(tone_pcm(seconds), OUTPUT_RATE)


class _FakeServer:
    """Start/stop, request log and fault switch shared by both fakes."""

    FAULTS: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._fault: str | None = None
        self._fault_times: int | None = None
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def fail(self, fault: str | None, times: int | None = None) -> None:
        """Answer the next ``times`` requests (all when ``None``) with ``fault``; ``None`` heals."""
        if fault is not None and fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(self.FAULTS)}")
        self._fault, self._fault_times = fault, times

    def _take_fault(self) -> str | None:
        if self._fault is None:
            return None
        if self._fault_times is not None:
            if self._fault_times <= 0:
                return None
            self._fault_times -= 1
        return self._fault

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def __aenter__(self) -> _FakeServer:
        # A short shutdown timeout: a handler still hanging is cancelled, not awaited for 60 s.
        self._runner = web.AppRunner(self._app(), shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()  # releases "hang" handlers
        if self._runner is not None:
            await self._runner.cleanup()


class FakeEdgeServer(_FakeServer):
    """edge-tts's websocket service. Faults: ``hang`` (accept, then silence),
    ``close_early`` (half the words and audio, then close), ``no_audio``
    (boundaries and turn.end but no audio), ``reject`` (HTTP 503 on upgrade)."""

    FAULTS = frozenset({"hang", "close_early", "no_audio", "reject"})

    @property
    def url(self) -> str:
        """The value for ``EdgeOptions.url`` / ``Settings.edge_url``."""
        return f"ws://127.0.0.1:{self.port}/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=fake"

    #: What ``.../voices/list`` answers: a few of the real service's voices, as it lists them.
    VOICES = [
        {"Name": f"Microsoft Server Speech Text to Speech Voice ({v})", "ShortName": v, "Gender": g, "Locale": v[:5]}
        for v, g in (("ko-KR-InJoonNeural", "Male"), ("ko-KR-SunHiNeural", "Female"),
                     ("ko-KR-HyunsuMultilingualNeural", "Male"), ("en-US-AriaNeural", "Female"),
                     ("en-US-GuyNeural", "Male"))
    ]

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/consumer/speech/synthesize/readaloud/voices/list", self._voices)
        app.router.add_get("/{tail:.*}", self._handle)
        return app

    async def _voices(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "query": dict(request.query), "messages": [], "fault": None})
        return web.json_response(self.VOICES)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault()
        entry: dict[str, Any] = {"path": request.path, "query": dict(request.query), "messages": [], "fault": fault}
        self.requests.append(entry)
        if fault == "reject":
            return web.Response(status=503, text="busy")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if fault == "hang":
            async for _ in ws:  # read, never answer, until the client gives up
                pass
            return ws
        ssml = None
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                entry["messages"].append(msg.data)
                head, _, body = msg.data.partition("\r\n\r\n")
                if "Path:ssml" in head:
                    ssml = body
                    break
        if ssml is None:
            return ws
        entry.update(_parse_ssml(ssml))
        rid = uuid.uuid4().hex
        words = [w.strip(_PUNCT) for w in entry["text"].split()]
        words = [w for w in words if w]
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:turn.start\r\n\r\n{{}}")
        if fault == "close_early":
            words = words[: len(words) // 2]
        for i, w in enumerate(words):
            meta = {
                "Metadata": [
                    {
                        "Type": "WordBoundary",
                        "Data": {
                            "Offset": int((0.05 + i * EDGE_SECONDS_PER_WORD) * _TICKS),
                            "Duration": int(0.25 * _TICKS),
                            "text": {"Text": escape(w), "Length": len(w), "BoundaryType": "WordBoundary"},
                        },
                    }
                ]
            }
            await ws.send_str(
                f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\n"
                f"Path:audio.metadata\r\n\r\n{json.dumps(meta, ensure_ascii=False)}"
            )
        if fault != "no_audio":
            audio = _mp3(len(words) * EDGE_SECONDS_PER_WORD + 0.1)
            header = f"X-RequestId:{rid}\r\nContent-Type:audio/mpeg\r\nPath:audio".encode()
            for k in range(0, len(audio), 4000):
                await ws.send_bytes((len(header) + 2).to_bytes(2, "big") + header + b"\r\n" + audio[k : k + 4000])
        if fault == "close_early":
            await ws.close()
            return ws
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:turn.end\r\n\r\n{{}}")
        async for _ in ws:  # the client closes after turn.end
            pass
        return ws


def _parse_ssml(ssml: str) -> dict[str, Any]:
    voice = re.search(r"<voice name='([^']*)'>", ssml)
    prosody = re.search(r"<prosody pitch='([^']*)' rate='([^']*)' volume='([^']*)'>(.*)</prosody>", ssml, re.S)
    return {
        "ssml": ssml,
        "voice": voice.group(1) if voice else None,
        "rate": prosody.group(2) if prosody else None,
        "text": unescape(prosody.group(4)) if prosody else "",
    }


class FakeOpenAIServer(_FakeServer):
    """An OpenAI-compatible speech server at ``base_url``. Faults: ``429`` (with
    ``Retry-After: 7``), ``503``, ``400``, ``401`` (echoes the bearer token, as a
    careless server might), ``empty`` (200, no body), ``html`` (200, not audio),
    ``hang`` (never answers)."""

    FAULTS = frozenset({"429", "503", "400", "401", "empty", "html", "hang"})

    @property
    def base_url(self) -> str:
        """The value for ``OpenAIOptions.base_url`` / ``Settings.openai_base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        fault = self._take_fault()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "json": body, "fault": fault})
        if not isinstance(body, dict) or not isinstance(body.get("input"), str):
            return web.json_response({"error": {"message": "input is required"}}, status=400)
        if fault == "429":
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "requests"}}, status=429, headers={"Retry-After": "7"}
            )
        if fault == "503":
            return web.json_response({"error": {"message": "The server is overloaded"}}, status=503)
        if fault == "400":
            return web.json_response({"error": {"message": f"Invalid voice: {body.get('voice')}"}}, status=400)
        if fault == "401":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return web.json_response({"error": {"message": f"Incorrect API key provided: {token}"}}, status=401)
        if fault == "empty":
            return web.Response(status=200, body=b"", content_type="audio/mpeg")
        if fault == "html":
            return web.Response(status=200, text="<html><body>Welcome</body></html>", content_type="text/html")
        if fault == "hang":
            await self._stop.wait()
            return web.Response(status=503)
        speed = float(body.get("speed") or 1.0)
        audio = _mp3(max(0.2, len(body["input"]) * OPENAI_SECONDS_PER_CHAR / speed))
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        for k in range(0, len(audio), 4096):  # streamed in pieces, like real servers
            await resp.write(audio[k : k + 4096])
        await resp.write_eof()
        return resp
