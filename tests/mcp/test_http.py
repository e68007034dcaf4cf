"""``/mcp`` inside the service (uvicorn on 127.0.0.1, port 0), driven by the SDK's own client over streamable
HTTP (``streamable_http_client`` + ``ClientSession``), under the service's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from flow import bad_input, check_tools, create_and_wait, edit_preview_and_ask, look_at_scene, reroll_and_restore
from mcp_helpers import Client, Running, example, http_session, start_service
from pydantic import SecretStr

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings

TOKEN = "s3cret-token-for-tests"


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(**{"out_dir": tmp_path / "out", "offline": True, "stages": ("audio", "image", "motion"),
                       "motion_enabled": True, "motion_length": 5, "serve_token": SecretStr(TOKEN), **kw})


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    svc = await start_service(settings(tmp_path))
    yield svc
    await svc.stop()


async def test_an_agent_over_http_shares_the_services_topics(running: Running, tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with http_session(running.url, TOKEN) as session:
        client = Client(session)
        await check_tools(client)
        topic = await create_and_wait(client)
        slug = topic["slug"]
        scene = await look_at_scene(client, slug, 3)
        await reroll_and_restore(client, slug, 3, out / slug)
        await bad_input(client, slug)
        await edit_preview_and_ask(client, slug)
    # Over HTTP the files are the service's URLs, served under the same token; the topic is the service's.
    image_url = scene["files"]["image"]
    assert image_url.startswith("/files/") and image_url.endswith("/image_scene_3.png")
    async with httpx2.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        got = await http.get(image_url)
        assert got.status_code == 200 and got.content == (out / slug / "image_scene_3.png").read_bytes()
        listed = (await http.get("/api/topics")).json()
        assert [t["slug"] for t in listed] == [slug]
        events = (await http.get(f"/api/topics/{slug}/events", params={"until": "idle"})).text
        assert '"take_restored"' in events


async def test_mcp_refuses_without_the_token(running: Running) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx2.AsyncClient(base_url=running.url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await http.post("/mcp", json=body, headers={**headers, "Accept": "application/json, text/event-stream"})
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"] == "Bearer"
    with pytest.raises(Exception):  # noqa: B017 - the SDK client surfaces the 401 as its own error
        async with http_session(running.url, "wrong"):
            pass


async def test_mcp_on_loopback_refuses_other_hosts_and_origins(running: Running) -> None:
    """DNS rebinding: a page of another site that resolves its name to 127.0.0.1 is refused, token or not."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(base_url=running.url) as http:
        host = await http.post("/mcp", json=body, headers={**accept, "Host": "evil.example:8765"})
        origin = await http.post("/mcp", json=body, headers={**accept, "Origin": "http://evil.example"})
    assert host.status_code == 421 and "--allowed-host" in host.json()["detail"]  # the service's own guard
    assert origin.status_code == 403 and "evil.example" in origin.json()["detail"]


async def test_a_wait_in_flight_ends_when_the_service_stops(tmp_path: Path) -> None:
    """One topic runs at a time: the second waits in the queue while an agent waits for it; stopping the
    service answers that wait (the topic interrupted, resumed by the next start) instead of hanging."""
    async with FakeComfyServer(job_time=0.0) as comfy:
        comfy.accept_any_model = True
        comfy.gate = asyncio.Event()  # the first topic holds the only worker: never opened
        await _stop_while_waiting(Settings(
            out_dir=tmp_path / "out", tts="fake", comfy_urls=(comfy.url,), workflow="sdxl",
            stages=("audio", "image"), serve_token=SecretStr(TOKEN), serve_concurrency=1))


async def _stop_while_waiting(settings: Settings) -> None:
    svc = await start_service(settings)
    stopping = None
    try:
        async with http_session(svc.url, TOKEN) as session:
            client = Client(session)
            await client.call("create_topic", **example())
            second = (await client.call("create_topic", **{**example(), "topic": "second"}))["slug"]
            assert (await client.call("wait_topic", slug=second, timeout_s=0))["status"] == "queued"
            client.progressed.clear()
            waiting = asyncio.ensure_future(client.call("wait_topic", slug=second, timeout_s=600))
            await client.progressed.wait()  # the wait is under way
            stopping = asyncio.ensure_future(svc.stop())
            waited = await waiting
            assert waited["status"] == "interrupted" and waited["finished"]
    finally:
        await (stopping or svc.stop())
    assert svc.task.done()
