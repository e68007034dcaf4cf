"""contact_sheet.png: its grid geometry and what each cell shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sceneforge.preview import CONTACT_SHEET_NAME, make_contact_sheet, sheet_geometry


def test_contact_sheet_grid(topic: Path) -> None:
    path = make_contact_sheet(topic)
    assert path == topic / CONTACT_SHEET_NAME
    geo = sheet_geometry(3)
    assert (geo.columns, geo.rows) == (3, 1)
    m = geo.margin
    assert geo.size == (3 * geo.cell_width + 4 * m, geo.cell_height + 2 * m)
    with Image.open(path) as im:
        assert im.size == geo.size
        x, y = geo.cell_origin(0)
        assert im.getpixel((x + 5, y + 5))[0] > 150  # scene 1's red thumbnail
        caption = np.asarray(im.convert("L").crop((x, y + geo.thumb_height, x + geo.cell_width, y + geo.cell_height)))
        assert (caption > 180).mean() > 0.01  # number, duration and script drawn


def test_sheet_geometry_wraps_rows() -> None:
    geo = sheet_geometry(9)
    assert (geo.columns, geo.rows) == (4, 3)
    assert geo.size[0] == 4 * geo.cell_width + 5 * geo.margin
    assert geo.size[1] == 3 * geo.cell_height + 4 * geo.margin
