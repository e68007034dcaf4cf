"""Fixtures for the ComfyUI tests: a fake server on loopback, and injected time."""

from __future__ import annotations

import pytest
from comfy_helpers import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


