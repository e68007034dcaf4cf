"""Helpers for the service tests: a real uvicorn on 127.0.0.1 port 0 in the test's own event loop, driven over
HTTP with aiohttp. Time is injected (retry and webhook waits are recorded, never slept); ComfyUI is the
fake server (``tests/fakes/comfy_server.py``), narration espeak or the in-process fake TTS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings
from sceneforge.service.eventlog import EventReader
from sceneforge.service.server import ServiceServer, bind_socket, service_url, start_server
from sceneforge.service.service import Service


class Waits:
    """An injected sleep: records the waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@dataclass
class Svc:
    """One running service and an HTTP client for it."""

    service: Service
    server: ServiceServer
    url: str
    http: aiohttp.ClientSession
    task: asyncio.Task[None]
    waits: Waits
    stopped: bool = field(default=False)

    @property
    def out(self) -> Path:
        return Path(self.service.settings.out_dir)

    async def call(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """``(status, decoded JSON or bytes)``; raw ``data`` is sent as ``application/json`` unless
        ``headers`` say otherwise."""
        kw: dict[str, Any] = {"headers": headers}
        if body is not None:
            kw["json"] = body
        elif data is not None:
            kw["data"] = data
            if not any(k.lower() == "content-type" for k in headers or {}):
                kw["headers"] = {**(headers or {}), "Content-Type": "application/json"}
        async with self.http.request(method, self.url + path, **kw) as resp:
            raw = await resp.read()
            if "json" in resp.headers.get("Content-Type", ""):
                return resp.status, json.loads(raw)
            return resp.status, raw

    async def stream(self, slug: str, *, after: int | None = None, last_event_id: int | None = None,
                     until_idle: bool = True, headers: dict[str, str] | None = None,
                     stop: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The SSE events of a topic (checking each message's ``id`` line matches its JSON), until the
        stream ends (``until_idle``) or ``stop(event)`` says so."""
        params = {"until": "idle"} if until_idle else {}
        if after is not None:
            params["after"] = str(after)
        hdrs = dict(headers or {})
        if last_event_id is not None:
            hdrs["Last-Event-ID"] = str(last_event_id)
        events: list[dict[str, Any]] = []
        async with self.http.get(f"{self.url}/api/topics/{slug}/events", params=params, headers=hdrs) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            ident = None
            async for raw in resp.content:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("id: "):
                    ident = int(line[4:])
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    assert event["id"] == ident
                    events.append(event)
                    if stop is not None and stop(event):
                        break
        return events

    async def wait(self, slug: str) -> dict[str, Any]:
        """Wait for the topic's job to end (its event stream closes); its state."""
        await self.stream(slug)
        status, state = await self.call("GET", f"/api/topics/{slug}")
        assert status == 200, state
        return state

    async def submit(self, payload: Any, expect: int = 202) -> dict[str, Any]:
        status, body = await self.call("POST", "/api/topics", body=payload)
        assert status == expect, body
        return body

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.should_exit = True
            await self.task
            await self.http.close()


async def start_service(settings: Settings, *, waits: Waits | None = None, keepalive: float = 15.0,
                        headers: dict[str, str] | None = None, send_timeout: float = 30.0) -> Svc:
    waits = waits or Waits()
    service = Service(settings, sleep=waits, keepalive=keepalive, send_timeout=send_timeout)
    sock = bind_socket("127.0.0.1", 0)
    server, task = await start_server(service, sock, signals=False)
    assert server.ready.is_set(), "the service did not start"
    http = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60))
    return Svc(service, server, service_url(sock), http, task, waits)


def offline(tmp_path: Path, **kw: Any) -> Settings:
    """The offline backends (espeak, storyboard, kenburns): no server needed."""
    return Settings(**{"out_dir": tmp_path / "out", "offline": True, "stages": ("audio", "image"), **kw})


def with_comfy(tmp_path: Path, srv: FakeComfyServer, **kw: Any) -> Settings:
    """Images (and motion) on the fake ComfyUI server; narration by the in-process fake TTS."""
    return Settings(**{"out_dir": tmp_path / "out", "tts": "fake", "comfy_urls": (srv.url,), "workflow": "sdxl",
                       "stages": ("audio", "image"), "motion_length": 5, **kw})


def topic(name: str, n: int = 3, **extra: Any) -> dict[str, Any]:
    """A scene file's JSON: ``n`` scenes with distinct scripts and prompts."""
    return {"topic": name, "scenes": [{"script": f"{name} line {i}.", "image_prompt": f"{name} prompt {i}"}
                                      for i in range(1, n + 1)], **extra}


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] if e["kind"] != "status" else f"status:{e['data']['status']}" for e in events]


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["status"] for e in events if e["kind"] == "status"]


def decoded(messages: list[tuple[int, bytes]] | None) -> list[dict[str, Any]] | None:
    """The events of :meth:`EventReader.messages` (its SSE messages' ``data``), None at the end."""
    if messages is None:
        return None
    return [json.loads(message.split(b"\ndata: ", 1)[1]) for _, message in messages]


def kept_events(path: Path, after: int = 0) -> list[dict[str, Any]]:
    """Every kept event of an events file after ``after``, as a stream would replay them."""
    reader, out = EventReader(path, after), []
    try:
        while (events := decoded(reader.messages())) is not None:
            out += events
    finally:
        reader.close()
    return out


def mtimes(root: Path) -> dict[str, int]:
    """Every asset file under a topic folder (not its .sceneforge state) with its mtime in ns."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))
            if p.is_file() and ".sceneforge" not in p.parts and p.name != "scenes.json"}


LOCAL = ("127.0.0.1",)  # webhook receivers run on this machine: the operator allows it (--webhook-allow)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that answers from a script of statuses, then 200."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.hold: asyncio.Event | None = None  # set: the next request waits for it
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        if self.hold is not None:
            hold, self.hold = self.hold, None
            await hold.wait()
        return web.Response(status=self.answers.pop(0) if self.answers else 200)
