"""The contact sheet: one PNG with every scene's thumbnail, number, duration and first words.

The scene assets are found with the preview's resolution rules
(:mod:`.assets`: paths as written by the run, or by name inside the topic
folder), so both outputs agree on which file is which scene's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..fonts import ellipsize, load_font, wrap_text
from ..fsutil import atomic_path
from ..layout import CONTACT_SHEET_NAME
from .assets import load_scenes, open_cover, resolve_scene

__all__ = ["CONTACT_SHEET_NAME", "SheetGeometry", "make_contact_sheet", "sheet_geometry"]



@dataclass(frozen=True)
class SheetGeometry:
    """The contact sheet's grid: ``columns`` x ``rows`` cells of ``cell_width`` x ``cell_height``."""

    columns: int
    rows: int
    thumb_width: int = 216
    thumb_height: int = 384
    caption_height: int = 104
    margin: int = 16

    @property
    def cell_width(self) -> int:
        return self.thumb_width

    @property
    def cell_height(self) -> int:
        return self.thumb_height + self.caption_height

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole sheet in pixels."""
        m = self.margin
        return (self.columns * (self.cell_width + m) + m, self.rows * (self.cell_height + m) + m)

    def cell_origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of cell ``index`` (0-based, row by row)."""
        r, c = divmod(index, self.columns)
        return (self.margin + c * (self.cell_width + self.margin), self.margin + r * (self.cell_height + self.margin))


def sheet_geometry(n_scenes: int, columns: int = 4) -> SheetGeometry:
    """The grid for ``n_scenes`` scenes: up to ``columns`` per row."""
    cols = max(1, min(columns, n_scenes))
    return SheetGeometry(columns=cols, rows=max(1, math.ceil(n_scenes / cols)))


def make_contact_sheet(topic_dir: Path | str, scenes: list[dict[str, Any]] | None = None) -> Path:
    """Write ``topic_dir/contact_sheet.png``: each scene's thumbnail, number, duration and first words.

    Raises :class:`~sceneforge.errors.AssetMissingError` naming the scene when its
    image is missing. Narration is optional here: a scene without it shows "– s".
    """
    topic_dir = Path(topic_dir)
    raw = load_scenes(topic_dir) if scenes is None else scenes
    resolved = [resolve_scene(i, s, topic_dir, need_audio=False) for i, s in enumerate(raw, 1)]
    geo = sheet_geometry(len(resolved))
    sheet = Image.new("RGB", geo.size, (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    head, body = load_font(24), load_font(18)
    for i, sc in enumerate(resolved):
        x, y = geo.cell_origin(i)
        thumb = open_cover(sc.image or sc.frames[0], sc.number, geo.thumb_width, geo.thumb_height,
                           Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x, y))
        dur = f"{sc.duration:.1f} s" if sc.duration else "– s"
        ty = y + geo.thumb_height + 8
        draw.text((x, ty), f"#{sc.number}", font=head, fill=(255, 255, 255))
        draw.text((x + geo.cell_width, ty + 4), dur, font=body, fill=(190, 190, 200), anchor="ra")
        lines = wrap_text(" ".join(sc.script.split()), body, geo.cell_width)
        if len(lines) > 2:
            lines = [lines[0], ellipsize(lines[1], body, geo.cell_width)]
        for k, line in enumerate(lines):
            draw.text((x, ty + 34 + k * 26), line, font=body, fill=(225, 225, 230))
    dest = topic_dir / CONTACT_SHEET_NAME
    with atomic_path(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest
