"""Preview a topic: one portrait MP4 of all scenes (:mod:`.video`), and a contact sheet of them
(:mod:`.contact_sheet`).

The modules below stack without circles: :mod:`.assets` at the bottom (loading
scenes.json and resolving each scene's files; the CJK font is :mod:`sceneforge.fonts`,
shared with the storyboard backend), :mod:`.subtitles` on it, and :mod:`.video` and
:mod:`.contact_sheet` on top.
These functions are synchronous and CPU-bound: call them in a thread from async code.
"""

from __future__ import annotations

from .assets import load_scenes
from .contact_sheet import CONTACT_SHEET_NAME, SheetGeometry, make_contact_sheet, sheet_geometry
from .subtitles import parse_srt
from .video import PREVIEW_NAME, PreviewResult, make_preview

__all__ = [
    "PreviewResult", "SheetGeometry", "make_preview", "make_contact_sheet", "sheet_geometry",
    "load_scenes", "parse_srt", "PREVIEW_NAME", "CONTACT_SHEET_NAME",
]
