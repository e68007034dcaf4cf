"""Shared fixtures: in-process fake backends for stage tests, and a recording sleep."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.backends import FakeTTS
from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings


@pytest.fixture(autouse=True)
def _reset_fakes():
    FakeTTS.reset()
    yield


class SleepRecorder:
    """An injected sleep: records the waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


class DeadlineRecorder:
    """``asyncio.timeout``, recording each deadline sceneforge's own code arms as ``(module, seconds)``.

    A test then says which deadline bounded a call instead of timing it against the wall clock
    (a bound like ``elapsed < 1.5`` fails on a loaded machine and passes with the wrong deadline).
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.armed: list[tuple[str, float | None]] = []
        self._timeouts: list[Any] = []

    def __call__(self, delay: float | None) -> Any:
        timeout = self.real(delay)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("sceneforge."):
            self.armed.append((caller, delay))
            self._timeouts.append(timeout)
        return timeout

    def expired(self) -> list[bool]:
        """Whether each recorded deadline is the one that fired (``asyncio.Timeout.expired``)."""
        return [t.expired() for t in self._timeouts]


@pytest.fixture
def deadlines(monkeypatch: pytest.MonkeyPatch) -> DeadlineRecorder:
    recorder = DeadlineRecorder(asyncio.timeout)
    monkeypatch.setattr(asyncio, "timeout", recorder)
    return recorder


@pytest.fixture
def settings_factory(tmp_path: Path):
    def make(**kw: Any) -> Settings:
        base: dict[str, Any] = {"out_dir": tmp_path / "out", "tts": "fake", "stages": ("audio",)}
        base.update(kw)
        return Settings(**base)

    return make


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Tests never read the developer's environment or a sceneforge.toml in the CWD."""
    import os

    for k in list(os.environ):
        if k.startswith("SCENEFORGE_") or k in ("COMFYUI_URL", "COMFYUI_WORKFLOW_PATH", "COMFYUI_TIMEOUT", "TTS_VOICE", "MOTION_ENABLED", "MOTION_FPS", "OUTPUT_DIR", "OPENAI_API_KEY"):
            monkeypatch.delenv(k, raising=False)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def comfy_server() -> AsyncIterator[FakeComfyServer]:
    """A running :class:`FakeComfyServer` (job_time 0) on 127.0.0.1."""
    async with FakeComfyServer(job_time=0.0) as srv:
        yield srv
