"""A journal of submitted ComfyUI jobs, so a killed run resumes them instead of running them again.

Before a ComfyUI backend submits a job it writes ``.sceneforge/jobs/<stage>_scene_N.json``
(the request key, server, prompt_id and clientId) in the topic folder. A later run
with the same request key re-attaches to that job (finished: download; still
running: wait) rather than submitting a twin. The backend's ``forget`` hook removes
the entry once the stage has recorded the asset in the cache, and before a forced
re-roll; the stage itself never sees a prompt id.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_json

__all__ = ["JobJournal"]


class JobJournal:
    """The journal entry of one scene's job in one stage."""

    def __init__(self, root: Path, stage: str, scene: int) -> None:
        """``root`` is the topic folder (``TopicLayout.root``)."""
        self.path = Path(root) / ".sceneforge" / "jobs" / f"{stage}_scene_{scene}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The entry for this exact request, or None (absent, other request, unreadable)."""
        try:
            entry = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        if not all(isinstance(entry.get(k), str) for k in ("server", "prompt_id", "client_id")):
            return None
        return entry

    def save(self, key: str, *, server: str, prompt_id: str, client_id: str, **extra: Any) -> None:
        """Remember a job about to be submitted (``server`` is the redacted URL: no secrets on disk)."""
        atomic_write_json(self.path, {"key": key, "server": server, "prompt_id": prompt_id, "client_id": client_id, **extra})

    def clear(self) -> None:
        """Forget the job (its asset is recorded, or a fresh roll is wanted)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
