"""The topic workspace: one topic's folder, and every rule about changing it.

A :class:`Topic` owns its ``scenes.json`` (one reader, :meth:`Topic.read`; one writer,
:meth:`Topic.write`, under the topic's lock), the lock itself, its takes (list, restore),
its seed pins, an edit of a scene (and so what the edit invalidates: the cache keys of
what it changed), a re-roll of one stage of one scene (:meth:`Topic.plan_reroll`,
:meth:`Topic.begin_reroll`) and the undoing of one that was cancelled or failed
(:meth:`Topic.undo_reroll`). The engine runs topics; the command line (``takes``,
``run --scene N --force``), the HTTP service and the agent tools all change them here, so
a rule about a topic is written once. Its methods do file I/O: from async code, call
them in a thread.

    topic = Topic.open("output", "morning-routine")
    topic.edit(3, {"script": "A new line."})           # the next run remakes scene 3's narration
    reroll = topic.plan_reroll(3, "image", seed=1234)   # what it replaces, to undo it
    topic.begin_reroll(reroll)                           # pin the seed, then run reroll_settings(...)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import StageCache
from ..config import Settings
from ..errors import OutputLockedError, UnsafePathError
from ..fsutil import atomic_write_bytes
from ..layout import TopicLayout, slugify, valid_slug
from ..lock import topic_lock
from ..scenes import SceneFile
from ..takes import PIN_FIELD, Take
from . import topics as rules
from .context import STAGE_FIELDS, drop_fields, set_fields
from .state import write_scenes_json

__all__ = ["Topic", "Reroll", "LOCK_WAIT", "without_outputs"]

#: Seconds a change waits for the topic's lock before it is refused (a run holding it: 409, not a hang).
LOCK_WAIT = 2.0


@dataclass(frozen=True)
class Reroll:
    """A re-roll of one stage of one scene, with what it replaces (to put back if it fails).

    ``take_before`` identifies the asset that was current (its take id, else ``record:<key>``;
    None: there was none); ``pin_before`` is the seed the scene pinned for the stage."""

    scene: int
    stage: str
    seed: int | None = None
    take_before: str | None = None
    pin_before: int | None = None


def without_outputs(sf: SceneFile, also: tuple[str, ...] = ()) -> SceneFile:
    """``sf`` with no asset field on any scene (a caller's paths are never taken as assets, nor read), nor
    the fields named in ``also`` (a face's own view fields); ``sf`` is changed in place and returned."""
    for scene in sf.scenes:
        for names in STAGE_FIELDS.values():
            drop_fields(scene, *names)
        drop_fields(scene, *also)
    return sf


def _wait(wait: float | None) -> float:
    return LOCK_WAIT if wait is None else wait


class Topic:
    """One topic's workspace (see the module's docstring)."""

    def __init__(self, layout: TopicLayout) -> None:
        self.layout = layout
        # What the last edited() checked: (scenes.json's bytes, scene, changes, the result), for edit().
        self._checked: tuple[bytes, int, dict[str, Any], SceneFile] | None = None

    # ------------------------------------------------------------------ finding it
    @classmethod
    def open(cls, out_dir: Path | str, slug: str) -> Topic:
        """The topic whose folder under ``out_dir`` is ``slug`` (which may not exist yet)."""
        if not valid_slug(slug):
            raise UnsafePathError(f"{slug!r} is not a topic name")
        return cls(TopicLayout(Path(out_dir), slug))

    @classmethod
    def named(cls, out_dir: Path | str, title: str) -> Topic:
        """The topic a title makes (its folder: ``slugify(title)``)."""
        return cls(TopicLayout(Path(out_dir), slugify(title)))

    @classmethod
    def at(cls, folder: Path | str) -> Topic:
        """An existing topic folder (``output/<slug>``, with its ``scenes.json``)."""
        return cls(rules.topic_dir_layout(Path(folder)))

    @property
    def slug(self) -> str:
        return self.layout.slug

    @property
    def root(self) -> Path:
        return self.layout.root

    def exists(self) -> bool:
        """A topic folder with a ``scenes.json``; a folder that is a link is none (it leads out of ``--out``)."""
        return not self.root.is_symlink() and self.layout.scenes_json.is_file()

    # ------------------------------------------------------------------ its state
    def read(self) -> SceneFile:
        """The topic's scenes as ``scenes.json`` has them (checked like any input)."""
        return rules.load_topic(self.layout)

    def write(self, sf: SceneFile, *, wait: float | None = None) -> None:
        """Replace ``scenes.json`` (atomically), under the topic's lock."""
        with self.lock(wait):
            write_scenes_json(sf, self.layout)

    @contextlib.contextmanager
    def lock(self, wait: float | None = None) -> Iterator[None]:
        """Hold the topic (shared with ``sceneforge run``): :class:`OutputLockedError` after ``wait`` seconds
        (default :data:`LOCK_WAIT`)."""
        try:
            with topic_lock(self.layout, wait=_wait(wait)):
                yield
        except OutputLockedError:
            raise self._busy() from None

    @contextlib.contextmanager
    def _refused_as_busy(self) -> Iterator[None]:
        try:
            yield
        except OutputLockedError:
            raise self._busy() from None

    def _busy(self) -> OutputLockedError:
        return OutputLockedError(f"another sceneforge run is writing topic {self.slug!r} (outside the service, "
                                 "or another face); try again when it ends")

    def check_free(self, wait: float | None = None) -> None:
        """Returns when no run holds the topic (else :class:`OutputLockedError`)."""
        with self.lock(wait):
            pass

    def snapshot(self) -> bytes | None:
        """``scenes.json`` as it is, to put back (None: no folder yet; empty: a folder without one)."""
        if not self.root.exists():
            return None
        try:
            return self.layout.scenes_json.read_bytes()
        except FileNotFoundError:
            return b""

    def put_back(self, before: bytes | None) -> None:
        """Undo a change that failed half-way, to what :meth:`snapshot` saw."""
        if before is None:
            shutil.rmtree(self.root, ignore_errors=True)
        elif before:
            atomic_write_bytes(self.layout.scenes_json, before)
        else:
            self.layout.scenes_json.unlink(missing_ok=True)

    def move_away(self, dest: Path) -> None:
        """Rename the folder to ``dest`` at once under its lock (gone for every reader); the caller removes it."""
        with self.lock():
            os.rename(self.root, dest)

    # ------------------------------------------------------------------ edits
    def edited(self, n: int, changes: Mapping[str, Any]) -> SceneFile:
        """The topic with scene ``n`` changed (``None`` removes a field), checked; nothing saved."""
        try:
            raw: bytes | None = self.layout.scenes_json.read_bytes()
        except OSError:
            raw = None  # load_topic says why
        sf = rules.edited(rules.load_topic(self.layout, raw), n, changes)
        self._checked = None if raw is None else (raw, n, dict(changes), sf.model_copy(deep=True))
        return sf

    def edit(self, n: int, changes: Mapping[str, Any], *, wait: float | None = None) -> SceneFile:
        """Change scene ``n`` and save: the next run remakes what the change decides (its cache keys).

        After :meth:`edited` with the same change, and ``scenes.json`` as it was then, what it
        checked is saved as it is (the file is read, not parsed and checked again)."""
        checked, self._checked = self._checked, None
        reuse = (checked[0], checked[3]) if checked is not None and checked[1:3] == (n, dict(changes)) else None
        with self._refused_as_busy():
            return rules.edit_scene(self.layout, n, changes, wait=_wait(wait), checked=reuse)

    # ------------------------------------------------------------------ takes
    def takes(self, n: int) -> dict[str, list[Take]]:
        """Scene ``n``'s takes of every stage, oldest first, the current one marked."""
        return rules.list_takes(self.layout, n)

    def restore(self, n: int, stage: str, take_id: str, *, wait: float | None = None, pair: bool = True) -> SceneFile:
        """Make an earlier take current again (image and motion as a pair); ``scenes.json`` points at it."""
        with self._refused_as_busy():
            return rules.restore_take(self.layout, n, stage, take_id, wait=_wait(wait), pair=pair)

    def current(self, stage: str, n: int) -> str | None:
        """What identifies scene ``n``'s ``stage`` asset now (its take, else its record); None: it has none."""
        hit = StageCache(self.layout).current(stage, n)
        if hit is None:
            return None
        take = hit.meta.get("take")
        return take if isinstance(take, str) else f"record:{hit.fingerprint}"

    # ------------------------------------------------------------------ re-rolls
    @staticmethod
    def reroll_settings(settings: Settings, n: int, stage: str) -> Settings:
        """Settings that make a new take of scene ``n``'s ``stage`` (its motion too after an image)."""
        return rules.reroll_settings(settings, n, stage)

    def plan_reroll(self, n: int, stage: str, seed: int | None = None) -> Reroll:
        """A re-roll of scene ``n``'s ``stage`` with ``seed`` pinned (None: a new random one), and what it
        replaces: the current asset and the scene's pin."""
        scene = rules.check_pin(self.read(), n, stage, seed)  # refuses what cannot be pinned (a narration seed)
        pinned = rules.scene_pin(self.layout, n, scene, stage)
        return Reroll(n, stage, seed, self.current(stage, n), pinned)

    def begin_reroll(self, reroll: Reroll, *, wait: float = 30.0) -> SceneFile:
        """Pin the re-roll's seed (or unpin, for a new random one) before its run; returns the topic as
        written (what its run runs)."""
        with self.lock(wait):
            sf = self.read()
            rules.pin_seed(sf, reroll.scene, reroll.stage, reroll.seed)
            write_scenes_json(sf, self.layout)
        return sf

    def undo_reroll(self, reroll: Reroll) -> bool:
        """After a re-roll cancelled or failed before it made its asset: the asset it was to replace is
        current again, the scene's fields point at what is current and its pin is as it was. False when
        there was nothing to undo (it made its asset: that is the scene's now)."""
        n, stage = reroll.scene, reroll.stage
        marker = self.current(stage, n)
        if marker is not None and marker != reroll.take_before:
            return False
        if marker is None and reroll.take_before is not None and not reroll.take_before.startswith("record:"):
            self.restore(n, stage, reroll.take_before, wait=30.0, pair=False)
        with self.lock(30.0):
            sf = self.read()
            scene = sf.scenes[n - 1]
            for shown in (stage, "motion") if stage == "image" else (stage,):
                rules.show_current(self.layout, scene, n, shown)
            if reroll.pin_before is not None:
                set_fields(scene, **{PIN_FIELD[stage]: reroll.pin_before})
            elif stage == "image":
                drop_fields(scene, "seed")
            elif stage == "motion" and scene.motion_frames_path is None:
                drop_fields(scene, "motion_seed")  # the failed job's pin; beside frames it is their record
            write_scenes_json(sf, self.layout)
        return True
