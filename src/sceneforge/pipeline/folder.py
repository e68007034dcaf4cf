"""A topic folder belongs to one topic: two topics whose names make the same folder never share it.

``C++ tips`` and ``C tips`` both become ``c-tips``. The folder names its topic in
``.sceneforge/topic.json``, written when a run first takes it (before any asset),
and in ``scenes.json``; a run of another topic is refused before anything is written,
and checked again once the run holds the topic's lock (a run that waited for the lock,
or one that found a killed run's folder, is still refused).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from ..errors import TopicConflictError
from ..fsutil import atomic_write_json
from ..layout import TopicLayout

__all__ = ["check_topic_folder", "claim_topic_folder"]


def _marker(layout: TopicLayout) -> Path:
    return layout.state_dir / "topic.json"


def _owner(layout: TopicLayout) -> str | None:
    for path in (_marker(layout), layout.scenes_json):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        owner = data.get("topic") if isinstance(data, dict) else None
        if isinstance(owner, str):
            return owner
    return None


def check_topic_folder(topic: str, layout: TopicLayout) -> None:
    """Refuse ``topic`` when its folder belongs to another topic."""
    owner = _owner(layout)
    if owner is not None and unicodedata.normalize("NFC", owner) != unicodedata.normalize("NFC", topic):
        raise TopicConflictError(
            f"topic {topic!r} would use the folder {layout.root}, which holds the topic {owner!r}; "
            "give this one another name with --topic (or the file's \"topic\")"
        )


def claim_topic_folder(topic: str, layout: TopicLayout) -> None:
    """Check the folder, then mark it as ``topic``'s (call while holding the topic's lock)."""
    check_topic_folder(topic, layout)
    if not _marker(layout).is_file():
        atomic_write_json(_marker(layout), {"topic": topic})
