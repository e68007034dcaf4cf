"""StageCache: per-stage, per-scene records of finished assets (narration, images, motion).

``WorkflowCache`` is the same class under the original system's name (its specification
names ``WorkflowCache.STAGE_AUDIO`` and the other stage constants as public API).

Records live under ``<out>/<topic-slug>/.sceneforge/<stage>/scene_N.json``. A
record holds the fingerprint of everything that determined the asset and, for
every file it produced, the file's size, ``mtime_ns``, ``ctime_ns`` and sha256
taken when the record was written (the files were just written, so hashing them
then is a read from the page cache). A record is written only after its files
are in place (atomic rename), and removed before a scene is regenerated.
Unreadable records are a warning and a rebuild, never a crash.

Checking a file on lookup:

* size differs, or 0 bytes: damaged; the scene is regenerated (with a warning).
* size, mtime and ctime all as recorded: accepted without reading the file (the
  fast path: a fully cached re-run costs one ``stat`` per file).
* size as recorded but mtime or ctime differ (a copied or moved-between-disks
  folder, ``touch``, a backup tool's hard link, or damage): the file is hashed;
  the same sha256 accepts it and refreshes the record's times so the next
  lookup is fast again; another sha256 is damage and the scene is regenerated.

Threat model. This guards against accidents: truncation, a file zeroed or
rewritten in place, a frame replaced by another valid PNG, an editor or tool
that saved over an asset, a partial copy. Writing to a file changes its ctime,
and unlike mtime an ordinary user cannot set ctime back (``os.utime`` restoring
the mtime still moves the ctime to now), so even a same-size rewrite with the
mtime restored is hashed and caught. Not caught: someone who sets the system
clock or writes the raw disk device, filesystems without a real ctime (some
FUSE or network mounts; there the mtime check still applies) and silent media
corruption underneath the filesystem. Hashing every file on its first use per
run would cover those at the price of reading every cached asset on every run
(100 scenes of motion frames are gigabytes); a checksumming filesystem is the
right tool for bit rot, so we chose stat with a hash fallback.

Records of the previous format (version 1: sizes only) are upgraded in place on
first lookup: each file must have its recorded size, and a PNG must start with
the PNG signature and end with the IEND chunk (which catches a zeroed or
truncated image); the files are then hashed once and the record rewritten as
version 2. Upgrading rather than regenerating keeps the images a user already
accepted: with random seeds a regenerated image would be a different picture.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from .fsutil import atomic_write_json, relative_to
from .layout import TopicLayout

__all__ = ["StageCache", "WorkflowCache", "CacheHit", "fingerprint", "file_digest"]

log = logging.getLogger("sceneforge.cache")

_VERSION = 2
_LEGACY_VERSION = 1  # sizes only; upgraded on first lookup
_CHUNK = 1 << 20
_PNG_HEAD = b"\x89PNG\r\n\x1a\n"
_PNG_TAIL = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A stable hash of a JSON-able mapping (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (motion input images, cache records).

    Memoized by path, size, mtime and ctime: a scene's image is needed by the
    cache record, the cache check, the job, the upload name and the restore of
    skipped stages, and is read once per run however often it is asked for.
    """
    return _stat_and_digest(Path(path))[1]


def _stat_and_digest(path: Path) -> tuple[os.stat_result, str]:
    st = path.stat()
    return st, _digest(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=1024)
def _digest(path: str, size: int, mtime_ns: int, ctime_ns: int) -> str:
    return _sha256(path)


def _sha256(path: Path | str) -> str:
    """Stream the file through sha256 in 1 MB chunks (frames can be large; memory stays flat)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _png_looks_complete(path: Path, size: int) -> bool:
    """PNG signature at the start and the IEND chunk at the end (cheap: 20 bytes read)."""
    if size < len(_PNG_HEAD) + len(_PNG_TAIL):
        return False
    with open(path, "rb") as fh:
        head = fh.read(len(_PNG_HEAD))
        fh.seek(-len(_PNG_TAIL), os.SEEK_END)
        return head == _PNG_HEAD and fh.read() == _PNG_TAIL


class _Entry(NamedTuple):
    """What a record says about one file. ``sha256`` is None in a version-1 record.

    A tuple, not a dataclass: a cached re-run builds one per frame (8100 for 100 clips).
    """

    size: int
    mtime_ns: int = -1
    ctime_ns: int = -1
    sha256: str | None = None

    @classmethod
    def parse(cls, raw: Any, version: int) -> _Entry:
        if version == _LEGACY_VERSION:
            if type(raw) is not int:
                raise TypeError("size")
            return cls(raw)
        e = cls(raw["size"], raw["mtime_ns"], raw["ctime_ns"], raw["sha256"])
        if not (type(e.size) is type(e.mtime_ns) is type(e.ctime_ns) is int) or type(e.sha256) is not str:
            raise TypeError("entry")
        return e

    @classmethod
    def of(cls, st: os.stat_result, digest: str) -> _Entry:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "ctime_ns": self.ctime_ns, "sha256": self.sha256}


class _Parsed(NamedTuple):
    entries: dict[str, _Entry]
    fields: dict[str, Any]
    meta: dict[str, Any]
    fingerprint: str


def _outside(rel: str) -> bool:
    """Whether a record's relative name leaves the topic folder (string checks: this runs per file per lookup)."""
    parts = rel.replace("\\", "/").split("/")
    return rel.startswith(("/", "\\")) or ".." in parts or (len(rel) > 1 and rel[1] == ":")


class _Damaged(Exception):
    """A recorded file no longer has its recorded content."""


@dataclass(frozen=True)
class CacheHit:
    """A valid record: the files (absolute), the scene fields recorded with them, and the record's
    ``meta`` (what the caller stored about how it was made: its take id, the inputs)."""

    files: list[Path]
    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""


class StageCache:
    """Per-scene cache of one topic folder, for every stage. Stage names are the original system's constants."""

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

    def _read(self, path: Path, stage: str, scene: int, fp: str | None, warn: Callable[[str], None]) -> _Parsed | None:
        """The record's files, fields and meta when it exists, parses and has fingerprint ``fp`` (any: None)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warn(f"cache record {path} unreadable ({exc.strerror}); regenerating scene {scene}")
            return None
        try:
            rec = json.loads(raw)
            version = rec.get("version")
            if version not in (_VERSION, _LEGACY_VERSION) or (fp is not None and rec["fingerprint"] != fp):
                return None
            files = rec["files"]
            if not isinstance(files, dict) or not files:
                raise ValueError("no files")
            entries = {rel: _Entry.parse(v, version) for rel, v in files.items()}
            fields = dict(rec.get("fields") or {})
            meta = dict(rec.get("meta") or {})
            found_fp = str(rec["fingerprint"])
        except (ValueError, KeyError, TypeError, AttributeError):
            warn(f"cache record {path} is corrupt; regenerating {stage} for scene {scene}")
            return None
        if any(_outside(rel) for rel in entries):  # a record can only point inside the topic folder
            warn(f"cache record {path} names a file outside the topic folder; ignoring it")
            return None
        return _Parsed(entries, fields, meta, found_fp)

    def lookup(self, stage: str, scene: int, fp: str) -> CacheHit | None:
        """The record of ``scene`` if its fingerprint is ``fp`` and its files are intact (see the module doc)."""
        return self._valid(stage, scene, fp, warn=self._warn)

    def meta(self, stage: str, scene: int) -> dict[str, Any] | None:
        """The ``meta`` of the scene's record as written (its files not checked: how it was made, not
        whether it is still there), or None without a readable record."""
        try:
            rec = json.loads(self._record_path(stage, scene).read_bytes())
            meta = (rec.get("meta") or {}) if rec.get("version") in (_VERSION, _LEGACY_VERSION) else None
        except (OSError, ValueError, AttributeError):
            return None
        return dict(meta) if isinstance(meta, dict) else None

    def current(self, stage: str, scene: int) -> CacheHit | None:
        """The scene's record whatever its fingerprint, if its files are intact (the asset there now).

        Quiet: a damaged asset is simply not there (its lookup already warned).
        """
        return self._valid(stage, scene, None, warn=lambda message: None)

    def _valid(self, stage: str, scene: int, fp: str | None, *, warn: Callable[[str], None]) -> CacheHit | None:
        path = self._record_path(stage, scene)
        parsed = self._read(path, stage, scene, fp, warn)
        if parsed is None:
            return None
        entries, fields, meta, found_fp = parsed
        root = self.layout.root
        refreshed: dict[str, _Entry] = {}
        try:
            for rel, entry in entries.items():
                refreshed[rel] = self._check(root, rel, entry)
        except FileNotFoundError:
            return None  # deleted: simply made again
        except _Damaged as exc:
            warn(f"{exc} changed on disk since it was made; regenerating {stage} for scene {scene}")
            return None
        except OSError as exc:
            warn(f"cannot check {exc.filename} ({exc.strerror}); regenerating {stage} for scene {scene}")
            return None
        if refreshed != entries:
            # Times moved (copy, touch) or a version-1 record: remember the checked state so the
            # next lookup is a stat again. Failing to write only costs another hash next time.
            with contextlib.suppress(OSError):
                self._write(path, found_fp, refreshed, fields, meta)
        return CacheHit(files=[root / rel for rel in entries], fields=fields, meta=meta, fingerprint=found_fp)

    @staticmethod
    def _check(root: Path, rel: str, entry: _Entry) -> _Entry:
        """``entry`` when the file is unchanged, a refreshed entry when only its times moved.

        Raises :class:`_Damaged` (or ``OSError``) otherwise.
        """
        p = root / rel
        st = p.stat()
        if st.st_size != entry.size or st.st_size == 0:
            raise _Damaged(p)
        if entry.sha256 is not None and (st.st_mtime_ns, st.st_ctime_ns) == (entry.mtime_ns, entry.ctime_ns):
            return entry  # the fast path: no read
        if entry.sha256 is None and p.suffix.lower() == ".png" and not _png_looks_complete(p, st.st_size):
            raise _Damaged(p)
        digest = _sha256(p)
        if entry.sha256 is not None and digest != entry.sha256:
            raise _Damaged(p)
        return _Entry.of(st, digest)

    def record(self, stage: str, scene: int, fp: str, files: Iterable[Path], fields: Mapping[str, Any] | None = None,
               meta: Mapping[str, Any] | None = None) -> None:
        """Remember that ``files`` (already in place) are scene ``scene``'s result for ``fp``.

        Hashes every file (streamed, 1 MB at a time); the digests are memoized, so a
        scene image recorded here is not read again for the motion fingerprint.
        """
        root = self.layout.root
        entries: dict[str, _Entry] = {}
        for f in files:
            rel = relative_to(f, root)
            st, digest = _stat_and_digest(Path(f))
            entries[rel.as_posix()] = _Entry.of(st, digest)
        self._write(self._record_path(stage, scene), fp, entries, fields or {}, meta or {})

    @staticmethod
    def _write(path: Path, fp: str, entries: Mapping[str, _Entry], fields: Mapping[str, Any],
               meta: Mapping[str, Any]) -> None:
        record = {
            "version": _VERSION,
            "fingerprint": fp,
            "files": {rel: e.to_json() for rel, e in entries.items()},
            "fields": dict(fields),
        }
        if meta:
            record["meta"] = dict(meta)
        atomic_write_json(path, record)

    def invalidate(self, stage: str, scene: int) -> None:
        """Forget a scene's record (done before regenerating it)."""
        with contextlib.suppress(FileNotFoundError):
            self._record_path(stage, scene).unlink()


#: The original system's name for :class:`StageCache` (it caches audio too, not only workflow outputs);
#: its specification names ``WorkflowCache.STAGE_AUDIO``, ``STAGE_IMAGE`` and ``STAGE_MOTION``.
WorkflowCache = StageCache
