"""Fixtures of the service tests: ``start`` (a running service) and ``comfy`` (the fake ComfyUI server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from page_helpers import launch, require_browser  # at import: it reads SCENEFORGE_CHROMIUM before tests clear it
from service_helpers import Receiver, Svc, offline, start_service

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings

StartService = Callable[..., Awaitable[Svc]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartService]:
    """``await start(settings=None, **kw)``: a running service (stopped at the end of the test)."""
    running: list[Svc] = []

    async def make(settings: Settings | None = None, **kw: Any) -> Svc:
        svc = await start_service(settings or offline(tmp_path), **kw)
        running.append(svc)
        return svc

    yield make
    for svc in running:
        await svc.stop()


@pytest.fixture
async def comfy() -> AsyncIterator[FakeComfyServer]:
    """The fake ComfyUI server (any model accepted, 0 s jobs unless a test sets ``job_time``)."""
    async with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        yield srv




@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A Chromium page (skipped without Chromium, failed in CI); the test fails if the page logged an error."""
    require_browser()
    async with launch({"width": 1280, "height": 900}) as b:
        yield b
    assert b.errors == [], "the page logged errors:\n" + "\n".join(b.errors)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield rec
    if rec.hold is not None:
        rec.hold.set()
    await runner.cleanup()
