"""Fixtures for the ComfyUI tests: a fake server on loopback, and injected time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from comfy_helpers import FakeTime

from fakes.comfy_server import FakeComfyServer


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def comfy_server() -> AsyncIterator[FakeComfyServer]:
    """A running :class:`FakeComfyServer` (job_time 0) on 127.0.0.1."""
    async with FakeComfyServer(job_time=0.0) as srv:
        yield srv

