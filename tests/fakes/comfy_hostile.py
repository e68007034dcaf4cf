"""Hostile modes of the fake ComfyUI server (issue #11): answers that never end, lie or flood.

Switched like any fault (``srv.fault("view_trickle", times=1, interval=0.02)``).
Each mode records how much it managed to send in ``srv.hostile_sent[name]`` (bytes,
or frames for ``ws_flood``), so a test can show the client stopped it early. Every
loop also has a bound of its own, so a client bug cannot hang the test run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .comfy_server import FakeComfyServer

__all__ = ["json_fault", "view_fault", "ws_flood", "LOGIN_PAGE"]

#: No hostile body goes past this, whatever the client does.
_SAFETY_BYTES = 2 * 1024 * 1024 * 1024
_SAFETY_FRAMES = 5_000_000
_CHUNK = b"x" * (256 * 1024)

LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head>"
    "<body><form method='post' action='/login'><input name='user'><input name='password' type='password'>"
    "</form></body></html>"
)
_HANGUP = (ConnectionError, RuntimeError)  # what writing to a socket the client closed raises


def json_fault(srv: FakeComfyServer, request: web.Request) -> Awaitable[web.StreamResponse] | None:
    """An endless or huge JSON answer for a GET whose path contains the fault's ``path``."""
    if request.method != "GET":
        return None
    for name in ("json_endless", "json_huge"):
        spec = srv.faults.get(name)
        if spec is not None and spec.get("path", "/system_stats") in request.path:
            spec = srv.take_fault(name)
            assert spec is not None
            size = None if name == "json_endless" else int(spec.get("size", 64 * 1024 * 1024))
            return _json_body(srv, request, name, size)
    return None


async def _json_body(srv: FakeComfyServer, request: web.Request, name: str, size: int | None) -> web.StreamResponse:
    """``{"system": {"os": "xxxx...`` chunked (no Content-Length): endless, or closed well-formed at ``size``."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    head, tail = b'{"system": {"os": "', b'"}}'
    limit = _SAFETY_BYTES if size is None else max(0, size - len(head) - len(tail))
    sent = 0
    with contextlib.suppress(*_HANGUP):
        await resp.write(head)
        while sent < limit:
            chunk = _CHUNK[: limit - sent]
            await resp.write(chunk)
            sent += len(chunk)
            srv.hostile_sent[name] = sent
        await resp.write(tail)
        await resp.write_eof()
    return resp


def view_fault(
    srv: FakeComfyServer, request: web.Request, data: bytes, headers: dict[str, str]
) -> Awaitable[web.StreamResponse] | None:
    """A lying ``/view`` answer for the file ``data``, or None to serve it honestly."""
    if srv.take_fault("view_html"):
        async def html() -> web.StreamResponse:
            return web.Response(status=200, text=LOGIN_PAGE, content_type="text/html")
        return html()
    if srv.take_fault("view_short_png"):
        async def short() -> web.StreamResponse:
            return web.Response(body=data[:10], headers=headers)  # Content-Length: 10, as the server "says"
        return short()
    if srv.take_fault("view_endless"):
        return _endless_view(srv, request, data, headers)
    spec = srv.take_fault("view_trickle")
    if spec is not None:
        return _trickle_view(srv, request, data, headers, float(spec.get("interval", 0.02)))
    return None


async def _endless_view(
    srv: FakeComfyServer, request: web.Request, data: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=headers)  # no Content-Length: chunked, "until done"
    await resp.prepare(request)
    sent = 0
    with contextlib.suppress(*_HANGUP):
        await resp.write(data)
        sent = len(data)
        while sent < _SAFETY_BYTES:
            await resp.write(_CHUNK)
            sent += len(_CHUNK)
            srv.hostile_sent["view_endless"] = sent
    return resp


async def _trickle_view(
    srv: FakeComfyServer, request: web.Request, data: bytes, headers: dict[str, str], interval: float
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=headers)
    resp.content_length = len(data)
    await resp.prepare(request)
    with contextlib.suppress(*_HANGUP):
        for i in range(len(data)):
            await resp.write(data[i:i + 1])
            srv.hostile_sent["view_trickle"] = i + 1
            await asyncio.sleep(interval)  # each byte restarts the client's read timeout
    return resp


def ws_flood(srv: FakeComfyServer, ws: web.WebSocketResponse) -> asyncio.Task[Any] | None:
    """Start sending ``status`` to ``ws`` without end (the task stops when the socket closes)."""
    spec = srv.take_fault("ws_flood")
    if spec is None:
        return None
    interval = float(spec.get("interval", 0.0))

    async def flood() -> None:
        status = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}
        with contextlib.suppress(*_HANGUP):
            for n in range(1, _SAFETY_FRAMES):
                if ws.closed:
                    break
                await ws.send_json(status)
                srv.hostile_sent["ws_flood"] = n
                await asyncio.sleep(interval)

    return asyncio.create_task(flood())
