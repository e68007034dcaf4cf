"""The JSON the API answers with for a topic and its takes (plain dicts, built fast).

The topic carries ``preview_urls`` (``preview``, ``contact_sheet``: the files a preview
made, when they exist) and its ``reference_image`` (with ``reference_url``) when it has
one. A scene is shown as ``scenes.json`` has it, plus ``n`` (numbered from 1) and
``urls``: ``/files/...`` links to its ``audio``, ``subtitle``, ``image``,
``motion_frames`` (a list), ``motion_video`` and ``reference`` (an uploaded reference
image), each present only when the file exists. Asset names come from the topic's
layout (the engine names every file so), never from a path in the state, so a state
can point the service at nothing outside the folder.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..pipeline import CONTACT_SHEET_NAME, COVER_NAME, FINAL_NAME, PREVIEW_NAME, Take, TopicLayout
from .files import file_url, relative_paths
from .references import REFERENCES
from .scene_states import SceneStates
from .store import TopicRecord, forget_state, read_state

__all__ = ["topic_view", "topic_answer", "forget", "preview_urls", "scene_view", "scenes_json", "takes_view", "read_state", "scene_count"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_CACHE_SIZE = 64
_BUDGET = 64 * 1024 * 1024  # bytes of encoded answers kept, all topics together


def scene_count(layout: TopicLayout) -> int:
    return len(read_state(layout)[0]["scenes"])


def _frames(prefix: str, paths: list[Any]) -> list[str]:
    names = [str(p).rpartition(os.sep)[2] for p in paths]
    if _SAFE_NAME.fullmatch("".join(names)):  # the engine's frame_0001.png ...: nothing to quote
        return [prefix + name for name in names]
    return [prefix + quote(name) for name in names]


def reference_url(layout: TopicLayout, value: Any) -> str | None:
    """The URL of a reference image uploaded to the topic (``references/<name>``, or that file's absolute path,
    as a run writes it back), when it exists; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    rel = f"{REFERENCES}/{os.path.basename(value)}"
    if value != rel and Path(value).resolve() != (layout.root / rel).resolve():
        return None
    return file_url(layout.slug, rel) if os.path.isfile(layout.root / rel) else None


def reference_value(layout: TopicLayout, value: Any) -> Any:
    """An uploaded reference as the upload route named it (``references/<name>``, relative to the topic's
    folder), also where a run wrote it back as an absolute path; any other value as it is."""
    if isinstance(value, str) and reference_url(layout, value) is not None:
        return f"{REFERENCES}/{os.path.basename(value)}"
    return value


def scene_view(layout: TopicLayout, n: int, raw: dict[str, Any]) -> dict[str, Any]:
    """One scene with ``n`` and the URLs of its files that exist."""
    root, slug = layout.root, layout.slug
    urls: dict[str, Any] = {}
    if (ref := reference_url(layout, raw.get("reference_image"))) is not None:
        urls["reference"] = ref
        raw = {**raw, "reference_image": reference_value(layout, raw["reference_image"])}
    for key, field, name in (("audio", "audio_path", f"audio_scene_{n}.mp3"),
                             ("subtitle", "subtitle_path", f"audio_scene_{n}.srt"),
                             ("image", "image_path", f"image_scene_{n}.png")):
        if raw.get(field) and os.path.isfile(root / name):
            urls[key] = file_url(slug, name)
    video = raw.get("motion_video_path")
    if isinstance(video, str) and video:
        name = os.path.basename(video)
        if name.startswith(f"motion_scene_{n}.") and os.path.isfile(root / name):
            urls["motion_video"] = file_url(slug, name)
    frames = raw.get("motion_frames_path")
    if isinstance(frames, list) and frames and os.path.isdir(root / f"motion_scene_{n}"):
        urls["motion_frames"] = _frames(f"/files/{quote(slug, safe='')}/motion_scene_{n}/", frames)
    return {**raw, "n": n, "urls": urls}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _folder(layout: TopicLayout) -> tuple[set[str], set[str]]:
    """The names of the topic folder's files and of its folders (one directory read)."""
    files: set[str] = set()
    dirs: set[str] = set()
    with os.scandir(layout.root) as entries:
        for entry in entries:
            (dirs if entry.is_dir() else files).add(entry.name)
    return files, dirs


def _files_stamp(n: int, files: set[str], dirs: set[str]) -> tuple[bool, ...]:
    """Which of scene ``n``'s files exist (what its URLs depend on besides its fields)."""
    return (f"audio_scene_{n}.mp3" in files, f"audio_scene_{n}.srt" in files, f"image_scene_{n}.png" in files,
            f"motion_scene_{n}" in dirs, f"motion_scene_{n}.mp4" in files)


def _encode_scene(layout: TopicLayout, n: int, raw: dict[str, Any]) -> bytes:
    # Paths as the output folder sees them ("<slug>/image_scene_1.png"): never the service's machine's.
    text = _dumps(scene_view(layout, n, raw)).decode("utf-8")
    return relative_paths(text, layout.root.parent, json_escaped=True).encode("utf-8")


class _Kept:
    """Encoded answers by topic folder, the least recently made first, their bytes counted as they come and go
    (kept within their share of the budget and :data:`_CACHE_SIZE`)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, Any, int]] = {}  # folder -> (key, value, size)
        self.size = 0
        self._lock = threading.Lock()  # big topics are answered off the loop: a count is never lost

    def get(self, root: str, key: Any = None) -> Any:
        """The value kept for ``root`` (only when made for ``key``, when given)."""
        entry = self.entries.get(root)
        return entry[1] if entry is not None and (key is None or entry[0] == key) else None

    def put(self, root: str, key: Any, value: Any, size: int) -> None:
        with self._lock:
            self._pop(root)
            self.entries[root] = (key, value, size)
            self.size += size
            while len(self.entries) > 1 and (len(self.entries) > _CACHE_SIZE or self.size > _BUDGET // 2):
                self._pop(next(iter(self.entries)))

    def pop(self, root: str) -> None:
        with self._lock:
            self._pop(root)

    def _pop(self, root: str) -> None:
        entry = self.entries.pop(root, None)
        if entry is not None:
            self.size -= entry[2]


_encoded = _Kept()  # folder -> its scenes, each (fields, files stamp, encoded)
_joined = _Kept()  # folder -> its scenes with their states, joined


def _encoded_scenes(layout: TopicLayout, read: tuple[dict[str, Any], os.stat_result] | None = None,
                    ) -> tuple[tuple[str, int, int, int], list[bytes]]:
    """:func:`scenes_json` with the key it is kept under."""
    state, st_scenes = read if read is not None else read_state(layout)
    st_root = os.stat(layout.root)  # before the folder is read: a file that comes after changes it again
    root = str(layout.root)
    key = (root, st_scenes.st_mtime_ns, st_scenes.st_size, st_root.st_mtime_ns)
    cached = _encoded.get(root, key)
    if cached is not None:
        return key, [entry[2] for entry in cached]
    before = _encoded.get(root) or []
    files, dirs = _folder(layout)
    entries: list[tuple[dict[str, Any], tuple[bool, ...], bytes]] = []
    for n, raw in enumerate(state["scenes"], 1):
        raw = raw if isinstance(raw, dict) else {}
        stamp = _files_stamp(n, files, dirs)
        old = before[n - 1] if n <= len(before) else None
        if old is not None and old[1] == stamp and old[0] == raw and not raw.get("reference_image"):
            entries.append(old)
        else:
            entries.append((raw, stamp, _encode_scene(layout, n, raw)))
    data = [entry[2] for entry in entries]
    _encoded.put(root, key, entries, sum(len(d) for d in data))
    return key, data


def scenes_json(layout: TopicLayout, read: tuple[dict[str, Any], os.stat_result] | None = None) -> list[bytes]:
    """The topic's scenes with their URLs, each encoded; served from memory while neither ``scenes.json``
    nor the topic folder changed (the engine puts every asset in place by a rename in that folder, which
    changes its mtime, so a file appearing or going away is seen). After a change only the scenes whose
    fields or files changed are encoded again: a re-roll of one scene of 200 with 81 frames each
    encodes one scene, not 16,200 frame URLs. ``read``: what :func:`read_state` answered, when the
    caller has it."""
    return _encoded_scenes(layout, read)[1]


def preview_urls(layout: TopicLayout) -> dict[str, str]:
    """The URLs of the topic's ``preview.mp4`` and ``contact_sheet.png`` (as ``preview_done`` has them) and
    ``final.mp4`` and ``cover.jpg`` (as ``compose_done`` has them) that exist."""
    return {key: file_url(layout.slug, name) for key, name in (("preview", PREVIEW_NAME),
                                                               ("contact_sheet", CONTACT_SHEET_NAME),
                                                               ("final", FINAL_NAME), ("cover", COVER_NAME))
            if os.path.isfile(layout.root / name)}


def topic_view(record: TopicRecord, layout: TopicLayout, states: SceneStates,
               read: tuple[dict[str, Any], os.stat_result] | None = None) -> bytes:
    """``GET /api/topics/{slug}`` as JSON bytes: the topic's record, its previews' URLs and its scenes, each
    with its ``state`` (and ``failure``) as of ``last_event_id``. ``read``: what :func:`read_state` answered,
    when the caller has it."""
    read = read if read is not None else read_state(layout)
    state = read[0]
    extra: dict[str, Any] = {"last_event_id": record.last_event_id, "preview_urls": preview_urls(layout)}
    for name in ("gpu_seconds_total", "gpu_cost_total"):  # every job the topic ran, re-rolls included
        if isinstance(state.get(name), dict):
            extra[name] = state[name]
    reference = state.get("reference_image")
    if isinstance(reference, str):
        extra["reference_image"] = relative_paths(reference_value(layout, reference), layout.root.parent)
        extra["reference_url"] = reference_url(layout, reference)
    head = _dumps({**record.public_json(), **extra})
    return head[:-1] + b',"scenes":[' + _scenes_with_states(layout, states, read) + b"]}"


def _scenes_with_states(layout: TopicLayout, states: SceneStates, read: tuple[dict[str, Any], os.stat_result]) -> bytes:
    """The scenes' encoded list with each one's state, kept while neither the scenes nor their states changed."""
    scenes_key, scenes = _encoded_scenes(layout, read)
    root = str(layout.root)
    key = (scenes_key, id(states), states.version)
    cached = _joined.get(root, key)
    if cached is not None:
        return cached
    shared = _dumps(states.shared_view())
    joined = b",".join(
        scene[:-1] + b',"state":' + (_dumps(states.view(n)) if n in states.changed else shared) + b"}"
        if n <= states.count else scene
        for n, scene in enumerate(scenes, 1))
    _joined.put(root, key, joined, len(joined))
    return joined


def forget(layout: TopicLayout) -> None:
    """A topic went away: nothing of it stays in memory."""
    forget_state(layout)
    _encoded.pop(str(layout.root))
    _joined.pop(str(layout.root))


def topic_answer(record: TopicRecord, layout: TopicLayout, scene_states: Callable[[TopicRecord], SceneStates]) -> bytes:
    """``GET /api/topics/{slug}``: ``scenes.json`` read once; the record's scene count brought up to date from it
    (scenes the command line added count), then the scenes' states for that count (``scene_states``:
    :meth:`Jobs.scene_states`), then the answer."""
    read = read_state(layout)
    record.scene_count = len(read[0]["scenes"])
    return topic_view(record, layout, scene_states(record), read)


def _take_urls(layout: TopicLayout, take: Take) -> list[str]:
    if take.current:
        return [file_url(layout.slug, name) for name in take.files]
    folder = f".sceneforge/takes/{take.stage}/scene_{take.scene}/{take.id}"
    return [file_url(layout.slug, f"{folder}/{i:04d}{Path(name).suffix}") for i, name in enumerate(take.files)]


def take_view(layout: TopicLayout, take: Take) -> dict[str, Any]:
    """One take: ``url`` is the file to play or show (a motion take's video, else its first frame)."""
    urls = _take_urls(layout, take)
    main = next((u for u, name in zip(urls, take.files) if name.endswith((".mp4", ".webm"))), None)
    if main is None:
        main = next((u for u, name in zip(urls, take.files) if not name.endswith(".srt")), urls[0] if urls else None)
    return {"id": take.id, "seed": take.seed, "url": main, "urls": urls, "created_at": take.created_at,
            "current": take.current}


def takes_view(layout: TopicLayout, by_stage: dict[str, list[Take]]) -> dict[str, Any]:
    """``GET .../takes``: every stage's takes, oldest first."""
    return {stage: [take_view(layout, t) for t in takes] for stage, takes in by_stage.items()}
