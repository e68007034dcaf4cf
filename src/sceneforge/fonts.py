"""The CJK font every drawn text uses, and word wrapping by pixel width.

Korean (and any CJK) text drawn with Pillow's default font comes out as tofu
boxes, so every card, subtitle and caption sceneforge draws uses Noto Sans CJK
from the ``noto-cjk-sans-jp-regular`` wheel (Hangul included).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from .errors import AssetMissingError

__all__ = ["cjk_font_path", "load_font", "wrap_text", "ellipsize"]


@lru_cache(maxsize=1)
def cjk_font_path() -> Path:
    """Path of ``NotoSansCJKjp-Regular.otf`` from the font wheel.

    Raises :class:`AssetMissingError` when the wheel is not installed.
    """
    try:
        from noto_cjk_sans_jp_regular import FONT_PATH
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise AssetMissingError(
            "the CJK font package is not installed; run `pip install noto-cjk-sans-jp-regular`"
        ) from exc
    path = Path(FONT_PATH)
    if not path.is_file():  # pragma: no cover - a broken install
        raise AssetMissingError(f"the CJK font {path} does not exist; reinstall noto-cjk-sans-jp-regular")
    return path


@lru_cache(maxsize=32)
def load_font(size: int) -> ImageFont.FreeTypeFont:
    """The CJK font at ``size`` pixels, cached per size.

    Sharing one font object between threads is safe: Pillow's FreeType module
    never releases the GIL while it uses the face, so calls are serialized.
    """
    return ImageFont.truetype(str(cjk_font_path()), size=max(1, int(size)))


def _split_long(word: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Break a word wider than ``max_width`` into pieces by characters.

    Needed for Korean or Japanese runs without spaces and for long URLs.
    """
    pieces: list[str] = []
    cur = ""
    for ch in word:
        if cur and font.getlength(cur + ch) > max_width:
            pieces.append(cur)
            cur = ch
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def wrap_text(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Wrap ``text`` into lines no wider than ``max_width`` pixels in ``font``.

    Words are kept whole where they fit; a word wider than a line is broken by
    characters. Newlines in ``text`` start new lines; blank lines are dropped.
    """
    lines: list[str] = []
    for para in text.splitlines():
        words = para.split()
        cur = ""
        for word in words:
            trial = f"{cur} {word}" if cur else word
            if font.getlength(trial) <= max_width:
                cur = trial
                continue
            if cur:
                lines.append(cur)
                cur = ""
            if font.getlength(word) <= max_width:
                cur = word
            else:
                *full, cur = _split_long(word, font, max_width)
                lines.extend(full)
        if cur:
            lines.append(cur)
    return lines


def ellipsize(line: str, font: ImageFont.FreeTypeFont, max_width: float) -> str:
    """``line`` with an ellipsis appended, shortened until it fits ``max_width``."""
    text = line.rstrip()
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1].rstrip()
    return text + "…"
