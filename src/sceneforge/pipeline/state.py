"""A topic's ``scenes.json``: its one writer (the topic workspace and the engine both write through it)."""

from __future__ import annotations

import json

from ..fsutil import atomic_write_bytes
from ..layout import TopicLayout
from ..scenes import SceneFile

__all__ = ["write_scenes_json"]


def write_scenes_json(sf: SceneFile, layout: TopicLayout) -> bool:
    """Write the resulting state next to the assets (atomically); an unchanged state is not rewritten.

    Returns whether the file was written.
    """
    data = json.dumps(sf.state(), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    try:
        if layout.scenes_json.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(layout.scenes_json, data)
    return True
