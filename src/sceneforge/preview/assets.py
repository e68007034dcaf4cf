"""A topic's scenes and their asset files, found and checked for the preview and the contact sheet.

Both outputs resolve assets with the same rules here, so they agree on which
file is which scene's: ``scenes.json`` paths are relative to the folder the run
started in, or absolute, and the topic folder may have moved since. Every path
field that is set must exist; a missing or unreadable file raises
:class:`~sceneforge.errors.AssetMissingError` naming the scene and the field.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import AssetMissingError, SceneValidationError

__all__ = ["RUN_HINT", "ResolvedScene", "load_scenes", "load_scene_file", "resolve_scene", "open_cover", "cover"]

RUN_HINT = "run `sceneforge run` first"


@dataclass
class ResolvedScene:
    """One scene's number, script, narration length and existing asset files."""

    number: int
    script: str
    duration: float | None
    audio: Path | None
    image: Path | None
    frames: list[Path] = field(default_factory=list)
    fps: float = 16.0
    subtitle: Path | None = None


def load_scenes(topic_dir: Path | str) -> list[dict[str, Any]]:
    """The scenes of ``topic_dir/scenes.json`` (an object with ``"scenes"``, or a bare list)."""
    return load_scene_file(topic_dir)[1]


def load_scene_file(topic_dir: Path | str) -> tuple[Any, list[dict[str, Any]]]:
    """``topic_dir/scenes.json`` as it is (its title, ...) and its scenes (see :func:`load_scenes`), one read."""
    path = Path(topic_dir) / "scenes.json"
    if not path.is_file():
        raise AssetMissingError(f"{path} does not exist; {RUN_HINT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SceneValidationError(f"{path}: not valid JSON ({exc})") from exc
    scenes = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, dict) for s in scenes):
        raise SceneValidationError(f"{path}: expected a non-empty list of scene objects under \"scenes\"")
    return data, scenes


def _find(value: Any, topic_dir: Path) -> Path | None:
    """The existing file ``value`` names, or None.

    Try the path as given, then relative to the topic folder, then by file name
    (and ``motion_scene_N/name``) inside it.
    """
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        return None
    p = Path(value)
    candidates = [p]
    if not p.is_absolute():
        candidates.append(topic_dir / p)
    candidates.append(topic_dir / p.name)
    if p.parent.name:
        candidates.append(topic_dir / p.parent.name / p.name)
    return next((c for c in candidates if c.is_file()), None)


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _audio_length(path: Path) -> float | None:
    import mutagen

    try:
        info = mutagen.File(str(path))
    except Exception:  # a damaged file: ffmpeg's decode reports it properly later
        return None
    return _positive(getattr(getattr(info, "info", None), "length", None))


def _required(n: int, raw: dict[str, Any], field_name: str, topic_dir: Path) -> Path | None:
    """The file a set path field names (None when unset); a set field must exist."""
    value = raw.get(field_name)
    if value in (None, ""):
        return None
    found = _find(value, topic_dir)
    if found is None:
        raise AssetMissingError(f"scene {n}: {field_name} {value} does not exist; {RUN_HINT}")
    return found


def _motion_frames(n: int, raw: dict[str, Any], topic_dir: Path) -> list[Path]:
    """The motion frames: a list of files, or a folder of ``frame_*.png``; every one must exist."""
    frames: list[Path] = []
    listed = raw.get("motion_frames_path") or []
    if isinstance(listed, (str, os.PathLike)):  # a folder of frames
        folder = _find(Path(listed) / "frame_0001.png", topic_dir)
        listed = sorted(folder.parent.glob("frame_*.png")) if folder else [listed]
    for value in listed:
        found = _find(value, topic_dir)
        if found is None:
            raise AssetMissingError(f"scene {n}: motion_frames_path {value} does not exist; {RUN_HINT}")
        frames.append(found)
    return frames


def resolve_scene(n: int, raw: dict[str, Any], topic_dir: Path, *, need_audio: bool) -> ResolvedScene:
    """Find scene ``n``'s files; every path field that is set must exist (subtitles excepted)."""
    audio = _required(n, raw, "audio_path", topic_dir)
    if audio is None and need_audio:
        raise AssetMissingError(f"scene {n}: audio_path is not set; {RUN_HINT} (audio stage)")
    frames = _motion_frames(n, raw, topic_dir)
    image = _required(n, raw, "image_path", topic_dir)
    if image is None and not frames:
        raise AssetMissingError(f"scene {n}: image_path is not set; {RUN_HINT} (image stage)")
    duration = _positive(raw.get("audio_duration"))
    if duration is None and audio is not None:
        duration = _audio_length(audio)
    fps = _positive(raw.get("motion_fps")) or 16.0
    subtitle = _find(raw.get("subtitle_path"), topic_dir)  # optional: falls back to the script
    return ResolvedScene(n, str(raw.get("script") or ""), duration, audio, image, frames, fps, subtitle)


def open_cover(path: Path, n: int, w: int, h: int, resample: int = Image.Resampling.BILINEAR) -> Image.Image:
    """Open an asset image and cover-fit it; an unreadable file names its scene."""
    try:
        with Image.open(path) as im:
            return cover(im, w, h, resample)
    except OSError as exc:  # includes UnidentifiedImageError and truncated files
        raise AssetMissingError(f"scene {n}: {path} is not a readable image ({exc}); regenerate it") from exc


def cover(img: Image.Image, w: int, h: int, resample: int = Image.Resampling.BILINEAR) -> Image.Image:
    """Scale ``img`` to cover w x h and crop the centre (no letterbox bars)."""
    iw, ih = img.size
    if (iw, ih) == (w, h):
        return img.convert("RGB")
    scale = max(w / iw, h / ih)
    cw, ch = w / scale, h / scale
    box = ((iw - cw) / 2, (ih - ch) / 2, (iw + cw) / 2, (ih + ch) / 2)
    return img.convert("RGB").resize((w, h), resample, box=box, reducing_gap=3.0)
