"""Shared helpers of the ComfyUI tests (imported by the test modules and conftest)."""

from __future__ import annotations

import asyncio
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]

#: Copies of the recorded ComfyUI protocol files the tests compare with, in the layout of the shared
#: recordings (``comfyui/samples/...``, ``comfyui/reference-workflows/...``); see its README.md.
#: They live in the repository so a plain clone runs every test: a missing file fails, never skips.
COMFY_DATA = _TESTS / "data" / "comfyui"
SAMPLES = COMFY_DATA / "samples"
REFERENCE = COMFY_DATA / "reference-workflows"

#: The full recorded ``GET /object_info`` (887 classes), byte-identical to the recording's
#: ``samples/basic/object_info_full.json.gz``; kept once, where the fake server serves it from.
OBJECT_INFO_FULL = _TESTS / "fakes" / "comfy_object_info.json.gz"

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
