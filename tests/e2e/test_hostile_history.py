"""A server whose health check answers but whose /history keeps failing: the run still ends by itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.comfy_server import FakeComfyServer
from sceneforge.backend import BackendResources
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.pool.pool import ComfyPool
from sceneforge.config import Settings
from sceneforge.errors import ServerUnavailableError, error_text
from sceneforge.pipeline import Engine, aplan_run


async def test_a_history_that_always_fails_ends_the_run_with_the_server_named(tmp_path: Path):
    probes: list[float] = []

    async def probe_sleep(seconds: float) -> None:  # the pool's probe waits, recorded, not slept
        probes.append(seconds)
        await asyncio.sleep(0)

    async def retry_sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    async with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        srv.fault("history_500", times=10_000)
        settings = Settings(out_dir=tmp_path, stages=("image",), comfy_urls=(srv.url,), workflow="sdxl", width=64,
                            height=64, comfy_poll_interval=0.01)
        pool = ComfyPool([ComfyClient(srv.url, poll_interval=0.01)], sleep=probe_sleep)
        plan = await aplan_run([{"topic": "t", "scenes": [{"script": "a", "image_prompt": "a red door"}]}], settings)
        async with Engine(settings, sleep=retry_sleep, resources=BackendResources(pool)) as engine:
            with pytest.raises(ServerUnavailableError) as ei:
                await asyncio.wait_for(engine.run_topic(plan.topics[0]), 60)
        await pool.aclose()
        jobs = len(srv.jobs)
    text = error_text(ei.value)
    assert text.startswith("scene 1 (image): ") and srv.url in text and "HTTP 500" in text
    assert "gave up after 3 attempts" in text
    assert 3 <= jobs <= 3 * 3  # three attempts, each moving at most twice: bounded, not endless
    assert probes  # the server left the pool and came back between moves
