"""The CJK font every drawn text uses, and wrapping by pixel width."""

from __future__ import annotations

from sceneforge.fonts import cjk_font_path, ellipsize, load_font, wrap_text


def test_font_has_hangul_glyphs() -> None:
    assert cjk_font_path().is_file()
    font = load_font(40)
    assert load_font(40) is font  # cached
    masks = [bytes(font.getmask(ch)) for ch in "가한글"]
    assert len(set(masks)) == 3 and all(any(m) for m in masks)


def test_wrap_by_pixels_and_characters() -> None:
    font = load_font(30)
    lines = wrap_text("공백없이아주길게이어지는한국어문장은글자단위로줄바꿈됩니다 and words", font, 200)
    assert len(lines) > 2
    assert all(font.getlength(line) <= 200 for line in lines)
    assert "".join(lines).replace(" ", "") == "공백없이아주길게이어지는한국어문장은글자단위로줄바꿈됩니다andwords"


def test_ellipsize_fits_the_width() -> None:
    font = load_font(30)
    line = "한 줄에 다 들어가지 않는 아주 긴 자막 문장입니다"
    short = ellipsize(line, font, 200)
    assert short.endswith("…") and font.getlength(short) <= 200
    assert line.startswith(short[:-1])
