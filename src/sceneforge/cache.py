"""WorkflowCache: per-stage, per-scene records of finished assets.

Records live under ``<out>/<topic-slug>/.sceneforge/<stage>/scene_N.json``. A
record holds the fingerprint of everything that determined the asset and the
size of every file it produced. A scene is reused only when the fingerprint
matches *and* every file is present with its recorded size, so a truncated or
replaced file is never taken as finished. A record is written only after its
files are in place (atomic rename), and removed before a scene is regenerated.
Unreadable records are a warning and a rebuild, never a crash.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .fsutil import atomic_write_json
from .layout import TopicLayout

__all__ = ["WorkflowCache", "CacheHit", "fingerprint", "file_digest"]

log = logging.getLogger("sceneforge.cache")

_VERSION = 1


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A stable hash of a JSON-able mapping (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (motion input images).

    Memoized by path, size and modification time: a scene's image is needed by the
    cache check, the job, the upload name and the restore of skipped stages, and is
    read once per run however often it is asked for.
    """
    st = Path(path).stat()
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheHit:
    """A valid record: the files (absolute) and the extra scene fields recorded with them."""

    files: list[Path]
    fields: dict[str, Any]


class WorkflowCache:
    """Per-scene cache of one topic folder. Stage names are the original system's constants."""

    STAGE_AUDIO: ClassVar[str] = "audio"
    STAGE_IMAGE: ClassVar[str] = "image"
    STAGE_MOTION: ClassVar[str] = "motion"
    STAGES: ClassVar[tuple[str, ...]] = ("audio", "image", "motion")

    def __init__(self, layout: TopicLayout, *, warn: Callable[[str], None] | None = None) -> None:
        self.layout = layout
        self._warn = warn or (lambda msg: log.warning(msg))

    def _record_path(self, stage: str, scene: int) -> Path:
        if stage not in self.STAGES:
            raise ValueError(f"unknown cache stage {stage!r}")
        return self.layout.state_dir / stage / f"scene_{scene}.json"

    def lookup(self, stage: str, scene: int, fp: str) -> CacheHit | None:
        """The record of ``scene`` if its fingerprint is ``fp`` and its files are complete."""
        path = self._record_path(stage, scene)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(f"cache record {path} unreadable ({exc.strerror}); regenerating scene {scene}")
            return None
        try:
            rec = json.loads(raw)
            if rec.get("version") != _VERSION:
                return None
            if rec["fingerprint"] != fp:
                return None
            files: dict[str, int] = rec["files"]
            fields = dict(rec.get("fields") or {})
            if not isinstance(files, dict) or not files:
                raise ValueError("no files")
        except (ValueError, KeyError, TypeError, AttributeError):
            self._warn(f"cache record {path} is corrupt; regenerating {stage} for scene {scene}")
            return None
        root = self.layout.root
        out: list[Path] = []
        for rel, size in files.items():
            p = (root / rel)
            # A record can only point inside the topic folder.
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                self._warn(f"cache record {path} names a file outside the topic folder; ignoring it")
                return None
            try:
                if p.stat().st_size != size or size == 0:
                    return None
            except OSError:
                return None
            out.append(p)
        return CacheHit(files=out, fields=fields)

    def record(self, stage: str, scene: int, fp: str, files: Iterable[Path], fields: Mapping[str, Any] | None = None) -> None:
        """Remember that ``files`` (already in place) are scene ``scene``'s result for ``fp``."""
        root = self.layout.root.resolve()
        entries: dict[str, int] = {}
        for f in files:
            rel = Path(f).resolve().relative_to(root)
            entries[rel.as_posix()] = Path(f).stat().st_size
        atomic_write_json(
            self._record_path(stage, scene),
            {"version": _VERSION, "fingerprint": fp, "files": entries, "fields": dict(fields or {})},
        )

    def invalidate(self, stage: str, scene: int) -> None:
        """Forget a scene's record (done before regenerating it)."""
        with contextlib.suppress(FileNotFoundError):
            self._record_path(stage, scene).unlink()
