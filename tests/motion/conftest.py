"""Fixtures for the motion tests: a fake ComfyUI server that accepts any model, a real small mp4."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from motion_helpers import make_video

from fakes.comfy_server import FakeComfyServer


@pytest.fixture
async def wan_server() -> AsyncIterator[FakeComfyServer]:
    """A running fake ComfyUI server (job_time 0) that holds every model a workflow names."""
    async with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        yield srv


@pytest.fixture(scope="session")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """9 frames of 64x64 H.264 at 8 fps."""
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4").read_bytes()

