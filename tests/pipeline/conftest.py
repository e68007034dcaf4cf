"""Fixtures for pipeline tests: fake ComfyUI servers that accept any model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.comfy_server import FakeComfyServer


@pytest.fixture
async def servers() -> AsyncIterator[list[FakeComfyServer]]:
    """Two running fake servers (one GPU each) that accept any model file."""
    async with FakeComfyServer() as a, FakeComfyServer() as b:
        for s in (a, b):
            s.accept_any_model = True
        yield [a, b]
