"""The storyboard draft image backend (its CJK font is tested in tests/test_fonts.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from sceneforge.backend import BackendResources
from sceneforge.images import image_registry
from sceneforge.images.base import ImageRequest
from sceneforge.images.storyboard import StoryboardBackend, StoryboardOptions, render_card, text_box


def _region(img: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(img.crop(box), dtype=np.int16)


def test_registered_and_built_from_settings() -> None:
    cls = image_registry.get("storyboard")
    assert cls is StoryboardBackend
    b = cls.from_settings(SimpleNamespace(width=None, height=None), BackendResources.none())
    assert (b.options.width, b.options.height) == (720, 1280)
    b = cls.from_settings(SimpleNamespace(width=540, height=None), BackendResources.none())
    assert (b.options.width, b.options.height) == (540, 960)


def test_fingerprint_names_size_and_version() -> None:
    fp = StoryboardBackend(StoryboardOptions(width=360, height=640)).fingerprint()
    assert fp["backend"] == "storyboard" and fp["width"] == 360 and fp["height"] == 640
    assert isinstance(fp["version"], int)


async def test_generate_writes_a_9_16_png(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "image_scene_2.png"
    result = await StoryboardBackend().generate(ImageRequest(2, "비 오는 서울의 밤거리", dest))
    assert result.path == dest and result.fields == {}
    with Image.open(dest) as im:
        assert im.format == "PNG" and im.size == (720, 1280)
    assert [p.name for p in dest.parent.iterdir()] == ["image_scene_2.png"]  # no temporary left


async def test_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    backend = StoryboardBackend()
    await backend.generate(ImageRequest(1, "같은 프롬프트 same prompt", a))
    await backend.generate(ImageRequest(1, "같은 프롬프트 same prompt", b))
    assert a.read_bytes() == b.read_bytes()
    # A different prompt gives a different background (colours derived from the prompt).
    c = render_card(1, "another prompt")
    d = render_card(1, "같은 프롬프트 same prompt")
    assert c.getpixel((5, 5)) != d.getpixel((5, 5))


def test_korean_is_drawn_not_tofu() -> None:
    box = text_box(720, 1280)
    empty = _region(render_card(1, "", background_key="k"), box)
    korean = _region(render_card(1, "한국어 문장", background_key="k"), box)
    assert np.abs(korean - empty).sum() > 0
    # Tofu boxes look alike whatever the character: the same syllables in another
    # order render identically with a font that lacks Hangul, differently with ours.
    ab = _region(render_card(1, "가나다라", background_key="k"), box)
    ba = _region(render_card(1, "라다나가", background_key="k"), box)
    assert np.abs(ab - ba).sum() > 1000


def test_long_prompt_wraps_inside_the_card() -> None:
    prompt = "아주 긴 프롬프트 " * 60 + "끝없이이어지는글자들" * 20
    card = render_card(3, prompt, background_key="k")
    plain = render_card(3, "", background_key="k")
    diff = np.abs(np.asarray(card, dtype=np.int16) - np.asarray(plain, dtype=np.int16)).sum(axis=2)
    left, top, right, bottom = text_box(720, 1280)
    ys, xs = np.nonzero(diff)
    # Text is drawn, on many lines, and never outside the text panel.
    assert len(ys) and ys.min() >= top and ys.max() <= bottom and xs.min() >= left and xs.max() <= right
    assert ys.max() - ys.min() > (bottom - top) // 2


def test_other_sizes_scale() -> None:
    card = render_card(12, "small card", 360, 640)
    assert card.size == (360, 640) and card.mode == "RGB"
