"""Takes: every asset a scene had, so a re-roll never loses the one before it.

The asset a scene has now is its *current take*: its cache record says how it was
made (fingerprint, scene fields such as ``image_seed``) and, in the record's
``meta``, the take's id, when it was made and the scene inputs that made it
(``image_prompt`` ...). Nothing is copied while an asset stays current, so a
first run pays nothing for takes.

Before a stage replaces a scene's asset (a re-roll, an edit, a forced run),
:meth:`TakeStore.keep` snapshots the current one under
``.sceneforge/takes/<stage>/scene_N/<take id>/``: its files as hard links (no
copy; the new asset is written under the same name as a new file, so the link
keeps the old bytes), or copies where the file system cannot link, and its
record. Restoring a take keeps the current one first, links the take's files
back into place atomically and makes its record the cache record again, so the
next run keeps it as long as the scene still asks for the same thing. The last
``keep`` snapshots of each asset are kept (10 by default), besides the current one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import CacheHit, StageCache, file_digest
from .errors import AssetMissingError, ConfigError
from .fsutil import PART_SUFFIX, relative_to, replace_dir

__all__ = ["Take", "TakeStore", "STAGE_INPUTS", "KEEP_TAKES", "new_take_meta", "recorded_motion_pin", "PIN_FIELD"]

KEEP_TAKES = 10

#: The scene fields that decide each stage's asset (recorded with it, restored with a take).
STAGE_INPUTS = {
    "audio": ("script", "voice", "rate"),
    "image": ("image_prompt", "negative_prompt", "reference_image", "workflow"),
    # motion_seed: the pin the scene had (None: a random seed), so a pin outlives the frames it made
    "motion": ("motion_prompt", "motion_workflow", "motion_seed"),
}
_SEED_FIELD = {"image": "image_seed", "motion": "motion_seed"}
#: The scene field that pins each stage's seed (narration has none).
PIN_FIELD = {"image": "seed", "motion": "motion_seed"}


def new_take_meta(inputs: Mapping[str, Any], clock: Callable[[], float] = time.time, *,
                  made_from: str | None = None) -> dict[str, Any]:
    """The ``meta`` a stage records with a fresh asset: a new take id, the time, the inputs (and for
    motion the sha256 of the image it was made from)."""
    now = clock()
    micros = int(now * 1_000_000) % 1_000_000
    # Ids sort in the order the takes were made (to the microsecond), and never collide.
    take_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{micros:06d}-{secrets.token_hex(3)}"
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{micros // 1000:03d}Z"
    meta = {"take": take_id, "created_at": created, "inputs": dict(inputs)}
    return {**meta, "made_from": made_from} if made_from else meta


def recorded_motion_pin(cache: StageCache, scene: int) -> int | None:
    """The ``motion_seed`` scene ``scene``'s current motion was pinned to when it was made (None: none).

    ``motion_seed`` is both an input (a pin) and what a run records beside the frames; a
    ``scenes.json`` fed back in tells them apart with this.
    """
    meta = cache.meta("motion", scene)  # what it was made with; the motion step checks its files anyway
    value = (meta.get("inputs") or {}).get("motion_seed") if meta is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Take:
    """One asset of one scene and stage. ``files`` are relative to the topic folder, as the asset had them."""

    id: str
    stage: str
    scene: int
    created_at: str
    fingerprint: str
    files: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    sha256: list[str] = field(default_factory=list)  # of each file, as kept
    made_from: str | None = None  # motion: the sha256 of the image it was made from
    current: bool = False

    @property
    def seed(self) -> int | None:
        """The random seed the asset was made with (images and motion), if recorded."""
        value = self.fields.get(_SEED_FIELD.get(self.stage, ""))
        return value if isinstance(value, int) else None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "scene": self.scene, "created_at": self.created_at,
                "fingerprint": self.fingerprint, "files": self.files, "fields": self.fields, "inputs": self.inputs,
                "sha256": self.sha256, **({"made_from": self.made_from} if self.made_from else {})}


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


class TakeStore:
    """The takes of one topic folder (its cache holds the current ones)."""

    def __init__(self, cache: StageCache, *, keep: int = KEEP_TAKES) -> None:
        self.cache = cache
        self.layout = cache.layout
        self.keep_last = keep

    def _dir(self, stage: str, scene: int) -> Path:
        if stage not in STAGE_INPUTS:
            raise ConfigError(f"unknown stage {stage!r}; choose from {', '.join(STAGE_INPUTS)}")
        return self.layout.state_dir / "takes" / stage / f"scene_{scene}"

    def _from_hit(self, stage: str, scene: int, hit: CacheHit) -> Take | None:
        meta = hit.meta
        if not isinstance(meta.get("take"), str):
            return None  # recorded before takes existed: not offered, never lost (the asset stays)
        files = [relative_to(f, self.layout.root).as_posix() for f in hit.files]
        made_from = meta.get("made_from")
        return Take(meta["take"], stage, scene, str(meta.get("created_at", "")), hit.fingerprint, files,
                    dict(hit.fields), dict(meta.get("inputs") or {}),
                    made_from=made_from if isinstance(made_from, str) else None, current=True)

    def current(self, stage: str, scene: int) -> Take | None:
        """The asset the scene has now, as a take (None when there is none, or it is damaged)."""
        hit = self.cache.current(stage, scene)
        return None if hit is None else self._from_hit(stage, scene, hit)

    def keep(self, stage: str, scene: int) -> Take | None:
        """Snapshot the current asset before it is replaced (idempotent); return it."""
        take = self.current(stage, scene)
        if take is None:
            return None
        folder = self._dir(stage, scene) / take.id
        if not folder.is_dir():
            tmp = folder.with_name(f".{take.id}.{secrets.token_hex(3)}{PART_SUFFIX}")
            tmp.mkdir(parents=True)
            for i, name in enumerate(take.files):
                _link_or_copy(self.layout.root / name, tmp / f"{i:04d}{Path(name).suffix}")
                take.sha256.append(file_digest(tmp / f"{i:04d}{Path(name).suffix}"))
            # Written plainly: the folder is still a temporary one, renamed into place when complete.
            (tmp / "take.json").write_text(json.dumps(take.to_json(), ensure_ascii=False), encoding="utf-8")
            tmp.rename(folder)
            self._prune(stage, scene)
        return take

    def list(self, stage: str, scene: int) -> list[Take]:
        """Every take of one asset, oldest first, the current one marked."""
        current = self.current(stage, scene)
        takes = {} if current is None else {current.id: current}
        folder = self._dir(stage, scene)
        for meta in folder.glob("*/take.json"):
            try:
                take = Take(**json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue  # a damaged snapshot is not offered
            takes.setdefault(take.id, take)
        return sorted(takes.values(), key=lambda t: t.id)

    def get(self, stage: str, scene: int, take_id: str) -> Take:
        """One take; :class:`ConfigError` naming the takes there are when it does not exist."""
        takes = self.list(stage, scene)
        for take in takes:
            if take.id == take_id:
                return take
        known = ", ".join(t.id for t in takes) or "none"
        raise ConfigError(f"scene {scene} has no {stage} take {take_id!r} (takes: {known})")

    def restore(self, stage: str, scene: int, take_id: str) -> Take:
        """Make a kept take current again: copies of its files put in place (atomically; the take keeps
        its own, so editing the asset later cannot change it), its record the cache's."""
        take = self.get(stage, scene, take_id)
        if take.current:
            return take
        src, root = self._dir(stage, scene) / take.id, self.layout.root
        self._verify(take, src)
        self.keep(stage, scene)  # the asset being replaced stays a take
        self.cache.invalidate(stage, scene)
        for d in {Path(n).parent for n in take.files if Path(n).parent != Path(".")}:
            staged = root / f".{d.name}.{secrets.token_hex(4)}{PART_SUFFIX}"  # motion frames: one folder swap
            staged.mkdir(parents=True)
            for i, name in enumerate(take.files):
                if Path(name).parent == d:
                    shutil.copy2(src / f"{i:04d}{Path(name).suffix}", staged / Path(name).name)
            replace_dir(staged, root / d)
        for i, name in enumerate(take.files):
            if Path(name).parent == Path("."):
                tmp = root / f".{name}.{secrets.token_hex(4)}{PART_SUFFIX}"
                shutil.copy2(src / f"{i:04d}{Path(name).suffix}", tmp)
                os.replace(tmp, root / name)
        meta = {"take": take.id, "created_at": take.created_at, "inputs": take.inputs,
                **({"made_from": take.made_from} if take.made_from else {})}
        self.cache.record(stage, scene, take.fingerprint, [root / n for n in take.files], take.fields, meta)
        take.current = True
        return take

    @staticmethod
    def _verify(take: Take, folder: Path) -> None:
        """A kept take's files still have the bytes they were kept with."""
        for i, (name, digest) in enumerate(zip(take.files, take.sha256)):
            kept = folder / f"{i:04d}{Path(name).suffix}"
            try:
                ok = file_digest(kept) == digest
            except OSError:
                ok = False
            if not ok:
                raise AssetMissingError(f"scene {take.scene}: {take.stage} take {take.id} is damaged ({name} changed "
                                        "or is missing); it cannot be restored")

    def _prune(self, stage: str, scene: int) -> None:
        """Keep the newest ``keep_last`` snapshots (ids sort by time)."""
        folder = self._dir(stage, scene)
        with os.scandir(folder) as entries:
            ids = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        for old in ids[: max(0, len(ids) - self.keep_last)]:
            shutil.rmtree(folder / old, ignore_errors=True)
