"""cover.jpg: the first scene's picture with the topic's title, for the upload form's thumbnail.

The picture is fitted like the video's first frame (cover-cropped, or whole over
a blurred fill for another aspect); the title is drawn in the bundled CJK font,
white with a dark outline over a soft shade, in the upper third, where no
player interface covers it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from ..fonts import ellipsize, load_font, wrap_text
from ..fsutil import atomic_path
from ..layout import COVER_NAME
from ..preview.assets import cover

__all__ = ["COVER_NAME", "make_cover"]



def _fitted(image: Path, size: tuple[int, int], fit: str) -> Image.Image:
    w, h = size
    with Image.open(image) as im:
        if fit == "cover":
            return cover(im, w, h, Image.Resampling.LANCZOS)
        bg = cover(im, w, h, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(max(4, min(w, h) // 40)))
        bg = Image.eval(bg, lambda v: int(v * 0.85))
        fg = im.convert("RGB")
        fg.thumbnail((w, h), Image.Resampling.LANCZOS)
        bg.paste(fg, ((w - fg.width) // 2, (h - fg.height) // 2))
        return bg


def _draw_title(img: Image.Image, title: str) -> None:
    w, h = img.size
    font = load_font(max(14, round(min(w, h) * 0.085)))
    max_w = w * 0.84
    lines = wrap_text(title, font, max_w)
    if len(lines) > 3:
        lines = lines[:2] + [ellipsize(lines[2], font, max_w)]
    line_h = round(font.size * 1.3)
    top = round(h * 0.16) if h > w else round(h * 0.12)
    shade = Image.new("L", img.size, 0)
    ImageDraw.Draw(shade).rectangle((0, top - line_h // 2, w, top + line_h * len(lines) + line_h // 2), fill=110)
    img.paste((0, 0, 0), (0, 0), shade.filter(ImageFilter.GaussianBlur(line_h // 2)))
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(lines):
        draw.text((w / 2, top + k * line_h), line, font=font, fill=(255, 255, 255), anchor="ma",
                  stroke_width=max(2, font.size // 14), stroke_fill=(0, 0, 0))


def make_cover(image: Path, title: str, size: tuple[int, int], fit: str, dest: Path) -> Path:
    """Write ``dest`` (JPEG): ``image`` fitted to ``size`` with ``title`` drawn on it."""
    img = _fitted(image, size, fit)
    if title.strip():
        _draw_title(img, title)
    with atomic_path(dest) as tmp:
        img.save(tmp, format="JPEG", quality=90, optimize=True)
    return dest
