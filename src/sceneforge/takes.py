"""Takes: every asset a scene ever had, so a re-roll never loses the one before it.

Each time a stage makes a scene's asset, its files are kept as a *take* under
``.sceneforge/takes/<stage>/scene_N/<take id>/`` with a ``take.json`` that says
how it was made: its cache fingerprint, the scene fields it set (``image_seed``
...), and the scene inputs that made it (``image_prompt`` ...). Files are hard
links to the asset (no copy; a re-roll writes a new file under the asset's name,
so the take keeps the old bytes), or copies where the file system cannot link.

Restoring a take links its files back into place atomically and writes the cache
record it had, so the next run keeps it as long as the scene still asks for the
same thing. The last ``keep`` takes of each asset are kept (10 by default).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import WorkflowCache
from .errors import ConfigError
from .fsutil import PART_SUFFIX, atomic_write_json, replace_dir
from .layout import TopicLayout

__all__ = ["Take", "TakeStore", "STAGE_INPUTS", "KEEP_TAKES"]

KEEP_TAKES = 10

#: The scene fields that decide each stage's asset (restored with a take).
STAGE_INPUTS = {
    "audio": ("script", "voice", "rate"),
    "image": ("image_prompt", "negative_prompt"),
    "motion": ("motion_prompt",),
}
_SEED_FIELD = {"image": "image_seed", "motion": "motion_seed"}


@dataclass
class Take:
    """One kept asset of one scene and stage. ``files`` are relative to the topic folder as the asset had them."""

    id: str
    stage: str
    scene: int
    created_at: str
    fingerprint: str
    files: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    current: bool = False

    @property
    def seed(self) -> int | None:
        """The random seed the asset was made with (images and motion), if recorded."""
        value = self.fields.get(_SEED_FIELD.get(self.stage, ""))
        return value if isinstance(value, int) else None


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


class TakeStore:
    """The takes of one topic folder."""

    def __init__(self, layout: TopicLayout, *, keep: int = KEEP_TAKES, clock: Any = time.time) -> None:
        self.layout = layout
        self.keep = keep
        self._clock = clock

    def _dir(self, stage: str, scene: int) -> Path:
        if stage not in STAGE_INPUTS:
            raise ConfigError(f"unknown stage {stage!r}; choose from {', '.join(STAGE_INPUTS)}")
        return self.layout.state_dir / "takes" / stage / f"scene_{scene}"

    def _current_file(self, stage: str, scene: int) -> Path:
        return self._dir(stage, scene) / "current.json"

    def add(self, stage: str, scene: int, files: Iterable[Path], *, fingerprint: str,
            fields: Mapping[str, Any], inputs: Mapping[str, Any]) -> Take:
        """Keep the asset just made (``files`` in place under the topic folder) as the current take."""
        root = self.layout.root.resolve()
        now = self._clock()
        take_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"-{secrets.token_hex(3)}"
        rel = [Path(f).resolve().relative_to(root).as_posix() for f in files]
        folder = self._dir(stage, scene) / take_id
        tmp = folder.with_name(f".{take_id}{PART_SUFFIX}")
        tmp.mkdir(parents=True)
        for i, name in enumerate(rel):
            _link_or_copy(root / name, tmp / f"{i:04d}{Path(name).suffix}")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        take = Take(take_id, stage, scene, created, fingerprint, rel, dict(fields), dict(inputs))
        atomic_write_json(tmp / "take.json", {k: v for k, v in asdict(take).items() if k != "current"})
        tmp.rename(folder)
        atomic_write_json(self._current_file(stage, scene), {"id": take_id})
        self._prune(stage, scene)
        take.current = True
        return take

    def list(self, stage: str, scene: int) -> list[Take]:
        """The takes of one asset, oldest first, the current one marked."""
        folder = self._dir(stage, scene)
        current = self.current_id(stage, scene)
        takes = []
        for meta in sorted(folder.glob("*/take.json")):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
                take = Take(**data)
            except (OSError, ValueError, TypeError):
                continue  # a damaged take is not offered
            take.current = take.id == current
            takes.append(take)
        return sorted(takes, key=lambda t: t.id)

    def current_id(self, stage: str, scene: int) -> str | None:
        """The id of the take the asset is now, if known."""
        try:
            value = json.loads(self._current_file(stage, scene).read_text(encoding="utf-8")).get("id")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def get(self, stage: str, scene: int, take_id: str) -> Take:
        """One take; :class:`ConfigError` naming the takes there are when it does not exist."""
        for take in self.list(stage, scene):
            if take.id == take_id:
                return take
        known = ", ".join(t.id for t in self.list(stage, scene)) or "none"
        raise ConfigError(f"scene {scene} has no {stage} take {take_id!r} (takes: {known})")

    def restore(self, stage: str, scene: int, take_id: str, cache: WorkflowCache) -> Take:
        """Put a take's files back in place (atomically) and its cache record with them."""
        take = self.get(stage, scene, take_id)
        src = self._dir(stage, scene) / take.id
        root = self.layout.root
        dirs = {Path(name).parent for name in take.files if Path(name).parent != Path(".")}
        cache.invalidate(stage, scene)
        for d in dirs:  # motion frames: a whole folder, swapped in at once
            staged = root / f".{d.name}.{secrets.token_hex(4)}{PART_SUFFIX}"
            staged.mkdir(parents=True)
            for i, name in enumerate(take.files):
                if Path(name).parent == d:
                    _link_or_copy(src / f"{i:04d}{Path(name).suffix}", staged / Path(name).name)
            replace_dir(staged, root / d)
        for i, name in enumerate(take.files):
            if Path(name).parent == Path("."):
                tmp = root / f".{name}.{secrets.token_hex(4)}{PART_SUFFIX}"
                _link_or_copy(src / f"{i:04d}{Path(name).suffix}", tmp)
                os.replace(tmp, root / name)
        cache.record(stage, scene, take.fingerprint, [root / name for name in take.files], take.fields)
        atomic_write_json(self._current_file(stage, scene), {"id": take.id})
        take.current = True
        return take

    def _prune(self, stage: str, scene: int) -> None:
        takes = self.list(stage, scene)
        for old in takes[: max(0, len(takes) - self.keep)]:
            shutil.rmtree(self._dir(stage, scene) / old.id, ignore_errors=True)
