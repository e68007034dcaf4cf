"""A small offline topic (three scenes of about 1.5 s) and a short music loop."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_helpers import build_topic, write_music


@pytest.fixture
def topic(tmp_path: Path) -> Path:
    return build_topic(tmp_path / "out" / "topic")


@pytest.fixture
def music(tmp_path: Path) -> Path:
    path = tmp_path / "music.mp3"
    write_music(path)
    return path
