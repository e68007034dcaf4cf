"""Where a topic's files go, and safe topic slugs.

``<out>/<topic-slug>/audio_scene_N.mp3``, ``image_scene_N.png``,
``motion_scene_N/frame_0001.png``; state under ``<out>/<topic-slug>/.sceneforge/``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import UnsafePathError

__all__ = ["slugify", "valid_slug", "TopicLayout", "FINAL_NAME", "COVER_NAME", "PREVIEW_NAME", "CONTACT_SHEET_NAME"]

_MAX_SLUG = 80

#: What ``compose`` and ``preview`` write in a topic's folder (the service links them as they appear).
FINAL_NAME, COVER_NAME = "final.mp4", "cover.jpg"
PREVIEW_NAME, CONTACT_SHEET_NAME = "preview.mp4", "contact_sheet.png"


def valid_slug(slug: str) -> bool:
    """A name that can only be a folder right under the output folder (what :func:`slugify` makes)."""
    return bool(slug) and "/" not in slug and "\\" not in slug and "\x00" not in slug and not slug.startswith(".")


def slugify(topic: str) -> str:
    """Make a folder name from a topic.

    Letters of every script (Korean included) and digits are kept; everything
    else becomes ``-``. The result never contains a separator, ``..``, a control
    character or a leading dot, so it cannot escape the output folder.
    """
    if not isinstance(topic, str):
        raise UnsafePathError(f"topic must be a string, got {type(topic).__name__}")
    text = unicodedata.normalize("NFC", topic).strip()
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isalnum() or cat.startswith("M"):  # keep combining marks with their letters
            out.append(ch.lower())
        elif ch in "_":
            out.append(ch)
        else:
            out.append("-")
    slug = re.sub(r"-{2,}", "-", "".join(out)).strip("-_")
    slug = slug[:_MAX_SLUG].strip("-_")
    if not slug:
        raise UnsafePathError(f"topic {topic!r} has no letters or digits to name a folder with")
    return slug


@dataclass(frozen=True)
class TopicLayout:
    """The paths of one topic's output folder."""

    out_dir: Path
    slug: str

    @classmethod
    def for_topic(cls, out_dir: Path | str, topic: str) -> TopicLayout:
        return cls(Path(out_dir), slugify(topic))

    @cached_property
    def root(self) -> Path:
        return self.out_dir / self.slug

    @cached_property
    def state_dir(self) -> Path:
        return self.root / ".sceneforge"

    @property
    def scenes_json(self) -> Path:
        return self.root / "scenes.json"

    def audio_path(self, n: int) -> Path:
        return self.root / f"audio_scene_{n}.mp3"

    def subtitle_path(self, n: int) -> Path:
        return self.root / f"audio_scene_{n}.srt"

    def image_path(self, n: int) -> Path:
        return self.root / f"image_scene_{n}.png"

    def motion_dir(self, n: int) -> Path:
        return self.root / f"motion_scene_{n}"

    def motion_video_path(self, n: int) -> Path:
        return self.root / f"motion_scene_{n}.mp4"

    @staticmethod
    def frame_name(i: int) -> str:
        """Frame file names are numbered from 1 with four digits."""
        return f"frame_{i:04d}.png"

    def frame_path(self, n: int, i: int) -> Path:
        return self.motion_dir(n) / self.frame_name(i)
