"""A topic's kept events: ``events.jsonl``, appended to, replayed in bounded chunks, compacted.

One JSON object a line, ids increasing. A line cut short by a crash is skipped when
read. Replay never loads the file: :class:`EventReader` keeps the file open (a
compaction that replaces it meanwhile leaves the reader on the version it opened, and
the live stream carries what comes after), finds the first event after the client's
id by bisecting the file's byte offsets, and then reads it ``CHUNK`` bytes at a time,
so a client costs one chunk of memory however long the file or however slowly it reads.

Ids never go back, also across a topic's deletion: the last id of a deleted topic is
kept in ``<out>/.sceneforge-service/event-ids.json`` and a new topic of the same name
goes on from it, so a client reconnecting with an old ``Last-Event-ID`` misses nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from ..pipeline import atomic_write_bytes

__all__ = ["EventLog", "EventReader", "json_line", "MAX_EVENTS_BYTES", "CHUNK"]

MAX_EVENTS_BYTES = 8 * 1024 * 1024
CHUNK = 64 * 1024
_TAIL = 64 * 1024


def json_line(value: Any) -> bytes:
    """``value`` as one line of UTF-8 JSON; text that is not valid Unicode (a lone surrogate) is escaped,
    never an error."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), default=str).encode("ascii")


_ID_FIRST = re.compile(rb'\{"id":\s*(\d+)\s*,')


def _decode(line: bytes) -> dict[str, Any] | None:
    """One kept line as an event with an integer id, or None (a line cut short by a crash)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("id"), int) else None


def _event_id(line: bytes) -> int | None:
    event = _decode(line)
    return None if event is None else event["id"]


class EventReader:
    """The events of one open events file after an id, a chunk at a time (blocking: call it in a thread)."""

    def __init__(self, path: Path, after: int) -> None:
        self.after = after
        try:
            self._fh: BinaryIO | None = path.open("rb")
        except OSError:
            self._fh = None
        else:
            self._fh.seek(self._start())

    def _line_at(self, offset: int) -> tuple[int | None, int]:
        """The id of the first whole line at or after ``offset`` and where that line starts."""
        assert self._fh is not None
        self._fh.seek(offset)
        if offset:
            self._fh.readline()  # the rest of a line cut by the offset
        start = self._fh.tell()
        while line := self._fh.readline():
            ident = _event_id(line)
            if ident is not None:
                return ident, start
            start = self._fh.tell()
        return None, start

    def _start(self) -> int:
        """Bisect for a line start before the first event after ``after`` (ids increase with the offset)."""
        assert self._fh is not None
        lo, hi = 0, self._fh.seek(0, io.SEEK_END)
        while hi - lo > CHUNK:
            mid = (lo + hi) // 2
            ident, _ = self._line_at(mid)
            if ident is not None and ident <= self.after:
                lo = mid
            else:
                hi = mid
        return self._line_at(lo)[1] if lo else 0

    def _lines(self) -> list[bytes] | None:
        if self._fh is None:
            return None
        data = self._fh.read(CHUNK)
        if not data:
            return None
        if not data.endswith(b"\n"):
            data += self._fh.readline()  # finish the last line (one event is never cut)
        return data.splitlines()

    def messages(self) -> list[tuple[int, bytes]] | None:
        """The next events as ``(id, SSE message)`` (about ``CHUNK`` bytes); None at the end of the file.

        A kept line is already the event's JSON as the stream sends it (:func:`json_line`, the id
        first): it is framed as it is, never decoded and encoded again."""
        lines = self._lines()
        if lines is None:
            return None
        out = []
        for line in lines:
            match = _ID_FIRST.match(line)
            if match is None or not line.endswith(b"}"):
                event = _decode(line)
                if event is None:
                    continue
                ident, line = event["id"], json_line(event)
            else:
                ident = int(match.group(1))
            if ident > self.after:
                out.append((ident, b"id: %d\ndata: %s\n\n" % (ident, line)))
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class EventLog:
    """The events files of the topics under one output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._ids_file = out_dir / ".sceneforge-service" / "event-ids.json"

    @staticmethod
    def append(path: Path, event: dict[str, Any]) -> None:
        """Add one event (it carries its ``id``)."""
        line = json_line(event) + b"\n"
        try:
            with path.open("ab") as fh:
                fh.write(line)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as fh:
                fh.write(line)

    def last_id(self, path: Path, slug: str, deleted: dict[str, int] | None = None) -> int:
        """The highest id the topic has had: its file's tail, or what a deleted topic of that name reached
        (``deleted``: :meth:`deleted`, when the caller read it already)."""
        last = 0
        try:
            with path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _TAIL))
                lines = fh.read().splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            ident = _event_id(line)
            if ident is not None:
                last = ident
                break
        return max(last, (self.deleted() if deleted is None else deleted).get(slug, 0))

    def deleted(self) -> dict[str, int]:
        """The last id of each deleted topic (a new topic of that name goes on from it)."""
        try:
            raw = json.loads(self._ids_file.read_bytes())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}

    def remember(self, slug: str, last_id: int) -> None:
        """A topic is going away: a new one of the same name starts after ``last_id``."""
        ids = self.deleted()
        if ids.get(slug, 0) >= last_id:
            return
        ids[slug] = last_id
        with contextlib.suppress(OSError):
            atomic_write_bytes(self._ids_file, json.dumps(ids, ensure_ascii=True).encode())

    @staticmethod
    def compact(path: Path, limit: int = MAX_EVENTS_BYTES) -> None:
        """Keep the newer half of an events file that grew past ``limit`` bytes (ids are kept)."""
        try:
            if path.stat().st_size <= limit:
                return
            lines = path.read_bytes().splitlines(keepends=True)
        except OSError:
            return
        kept, size = [], 0
        for line in reversed(lines):
            size += len(line)
            if size > limit // 2:
                break
            kept.append(line)
        atomic_write_bytes(path, b"".join(reversed(kept)) or b"\n")
