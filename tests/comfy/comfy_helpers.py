"""Shared helpers of the ComfyUI tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

#: The recorded samples (``comfyui/samples``); tests that compare with them skip when absent.
SAMPLES = Path(os.environ.get(
    "SCENEFORGE_COMFY_SAMPLES", Path(__file__).resolve().parents[3] / "shared" / "comfyui" / "samples"
))

#: EmptyImage(64x64, 3 images, colour 123456) -> SaveImage "acc/test": the graph of run/01_normal.
NORMAL_GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 3, "color": 123456}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "acc/test"}},
}


class FakeTime:
    """Injected ``clock``/``sleep``: each sleep advances the clock at once.

    It still yields ~1 ms of real time so the fake server (same event loop) gets
    to run; a 300 s timeout with 1 s ticks thus costs ~0.3 s, not 5 minutes.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0.001)


def exception_chain_text(exc: BaseException) -> str:
    """``str`` and ``repr`` of an exception and everything chained to it (for secret checks)."""
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur)]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)
