"""``GET /files/{slug}/{path}``: a topic's assets, and never anything else.

A path is served only when, resolved (symbolic links followed), it is a regular
file inside the topic's folder, and none of its parts is hidden (``.`` first), with
one exception: the take snapshots under ``.sceneforge/takes/`` (a take's ``url``
points there). The rest of ``.sceneforge/`` (cache records, the run lock, the job
journal, the service's own state) and every temporary ``.*.part`` file answer 404,
as does anything outside the folder. Starlette's :class:`FileResponse` answers
``Range`` requests (206), so audio and video seek.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from ..pipeline import valid_slug

__all__ = ["router", "safe_file", "file_url", "relative_paths", "relative_value", "CONTENT_TYPES"]

CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".srt": "application/x-subrip",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".json": "application/json",
}

router = APIRouter()


def file_url(slug: str, relpath: str) -> str:
    """The ``/files`` URL of a file of a topic (``relpath`` relative to the topic folder, ``/``-separated)."""
    return f"/files/{quote(slug, safe='')}/{quote(relpath)}"


def _allowed(parts: tuple[str, ...]) -> bool:
    if not parts or any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        return False
    hidden = [i for i, p in enumerate(parts) if p.startswith(".")]
    if not hidden:
        return True
    # the only hidden part allowed: .sceneforge/takes/<stage>/scene_N/<id>/<file>
    return hidden == [0] and parts[0] == ".sceneforge" and len(parts) == 6 and parts[1] == "takes"


@functools.lru_cache(maxsize=16)
def _prefixes(out_dir: Path) -> tuple[tuple[str, str], ...]:
    """The ways a path in the output folder begins (as given, resolved, absolute), plain and JSON-escaped,
    the longest first: worked out once per folder, not once per scene or event."""
    roots = {str(out_dir), str(out_dir.resolve()), os.path.abspath(out_dir)}
    prefixes = sorted({root.rstrip(os.sep) + os.sep for root in roots}, key=len, reverse=True)
    return tuple((prefix, json.dumps(prefix, ensure_ascii=False)[1:-1]) for prefix in prefixes)


def relative_paths(text: str, out_dir: Path, *, json_escaped: bool = False) -> str:
    """``text`` with the service's output folder left out of the paths it names (a client never
    learns where the service keeps its files); ``json_escaped``: the paths are inside JSON strings."""
    for plain, escaped in _prefixes(out_dir):
        text = text.replace(escaped if json_escaped else plain, "")
    return text


def relative_value(value: Any, out_dir: Path) -> Any:
    """:func:`relative_paths` over every string of a JSON value (dicts and lists walked, keys too), without
    encoding it to text and back."""
    if isinstance(value, str):
        return relative_paths(value, out_dir)
    if isinstance(value, dict):
        return {relative_value(k, out_dir): relative_value(v, out_dir) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_value(v, out_dir) for v in value]
    return value


def safe_file(out_dir: Path, slug: str, path: str) -> Path | None:
    """The file ``path`` names in topic ``slug``, or None when it must not be served."""
    if not valid_slug(slug) or slug in (".", ".."):
        return None
    rel = PurePosixPath(path)
    if rel.is_absolute() or not _allowed(rel.parts):
        return None
    if (out_dir / slug).is_symlink():
        return None  # a topic folder that is a link leads out of --out: never served (nor scanned)
    root = (out_dir / slug).resolve()
    try:
        target = (root / Path(*rel.parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    if not _allowed(target.relative_to(root).parts):  # a link inside the folder that leads to a hidden file
        return None
    return target


_RANGE = re.compile(r"bytes=\s*(\d*-\d*\s*(,\s*\d*-\d*\s*)*)", re.IGNORECASE)


def _valid_range(value: str) -> bool:
    """Whether ``Range: value`` is one RFC 9110 asks to honour: byte ranges, each ``first-last`` with
    first <= last, ``first-`` or ``-suffix``. Any other (another unit, a backwards range) is ignored:
    the whole file, 200."""
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return False
    for part in match.group(1).split(","):
        first, _, last = part.strip().partition("-")
        if (not first and not last) or (first and last and int(first) > int(last)):
            return False
    return True


def _drop_invalid_range(request: Request) -> None:
    headers = request.scope["headers"]
    if any(k == b"range" and not _valid_range(v.decode("latin-1")) for k, v in headers):
        request.scope["headers"] = [(k, v) for k, v in headers if k != b"range"]


def served_state(out_dir: Path, target: Path) -> Response:
    """A topic's ``scenes.json`` with the paths of the service's machine said relative to the output folder."""
    text = target.read_text(encoding="utf-8", errors="replace")
    return Response(relative_paths(text, out_dir, json_escaped=True), media_type="application/json",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


@router.get("/files/{slug}/{path:path}", tags=["files"], summary="A topic's file (HTTP Range supported)",
            responses={206: {"description": "Partial content"}, 404: {"description": "No such file"}})
async def get_file(slug: str, path: str, request: Request) -> Response:
    """Serve one asset of a topic: narration, subtitles, images, motion frames or video, previews, takes."""
    out_dir: Path = request.app.state.service.out_dir
    target = safe_file(out_dir, slug, path)
    if target is None:
        raise HTTPException(404, detail=f"no file {path!r} in topic {slug!r}")
    if path == "scenes.json":
        return served_state(out_dir, target)
    _drop_invalid_range(request)
    media = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
    stat = os.stat(target)
    return FileResponse(target, media_type=media, stat_result=stat,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


router.add_api_route("/files/{slug}/{path:path}", get_file, methods=["HEAD"], include_in_schema=False)  # sizes for players
