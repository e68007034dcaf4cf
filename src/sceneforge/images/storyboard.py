"""The ``storyboard`` image backend: an honest offline draft.

Instead of a picture it draws a 9:16 card with the scene number, the prompt
word-wrapped and a "storyboard draft" label, over a gradient whose colours are
derived from the prompt (so editing a prompt visibly changes its card). It needs
no network and no GPU, and is meant for reviewing timing and layout.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field

from ..events import Reporter, null_report
from ..fonts import ellipsize, load_font, wrap_text
from ..fsutil import atomic_path
from .base import ImageBackend, ImageRequest, ImageResult

if TYPE_CHECKING:
    from ..backend import BackendResources
    from ..config import Settings

__all__ = ["StoryboardOptions", "StoryboardBackend", "render_card", "DRAW_VERSION", "text_box"]

DRAW_VERSION = 1
"""Bump when the drawing changes, so cached cards are redrawn (it is part of the fingerprint)."""

_DEFAULT_W, _DEFAULT_H = 720, 1280
_LABEL = "storyboard draft · sceneforge"


class StoryboardOptions(BaseModel):
    """Card size in pixels (9:16 portrait by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    width: int = Field(_DEFAULT_W, ge=64, le=16384)
    height: int = Field(_DEFAULT_H, ge=64, le=16384)


def _palette(key: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two dark, saturated colours from a hash of ``key`` (stable across runs and machines)."""
    d = hashlib.sha256(key.encode("utf-8")).digest()
    hue = d[0] / 255.0
    hue2 = (hue + 0.08 + d[1] / 255.0 * 0.25) % 1.0
    # Dark enough that white text always reads well.
    c0 = colorsys.hsv_to_rgb(hue, 0.45 + d[2] / 255.0 * 0.25, 0.30 + d[3] / 255.0 * 0.12)
    c1 = colorsys.hsv_to_rgb(hue2, 0.55 + d[4] / 255.0 * 0.25, 0.14 + d[5] / 255.0 * 0.10)
    return (
        tuple(int(v * 255) for v in c0),  # type: ignore[return-value]
        tuple(int(v * 255) for v in c1),
    )


def _gradient(width: int, height: int, key: str) -> Image.Image:
    """A diagonal two-colour gradient, built with numpy in one pass."""
    c0, c1 = (np.array(c, dtype=np.float32) for c in _palette(key))
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    t = (0.8 * y + 0.2 * x)[..., None]
    arr = c0 * (1.0 - t) + c1 * t
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")


def text_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The panel (left, top, right, bottom) that holds the prompt on a card of this size."""
    mx = round(width * 0.07)
    return (mx, round(height * 0.36), width - mx, round(height * 0.87))


def _fit_prompt(prompt: str, box_w: int, box_h: int, start: int, smallest: int):  # type: ignore[no-untyped-def]
    """Largest font size (from ``start`` down to ``smallest``) whose wrapped lines fit the box.

    Returns (font, lines, line_height); at the smallest size the last visible line is ellipsized.
    """
    size = start
    while True:
        font = load_font(size)
        line_h = round(size * 1.45)
        lines = wrap_text(prompt, font, box_w)
        if len(lines) * line_h <= box_h or size <= smallest:
            break
        size = max(smallest, int(size * 0.9))
    max_lines = max(1, box_h // line_h)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = ellipsize(lines[-1], font, box_w)
    return font, lines, line_h


def render_card(
    scene: int, prompt: str, width: int = _DEFAULT_W, height: int = _DEFAULT_H, *, background_key: str | None = None,
    note: str = "",
) -> Image.Image:
    """Draw the storyboard card for one scene and return it as an RGB image.

    ``background_key`` is the text the gradient colours come from (default: the
    prompt); tests pass a fixed key to compare cards that differ only in text.
    """
    img = _gradient(width, height, prompt if background_key is None else background_key)
    unit = min(width / _DEFAULT_W, height / _DEFAULT_H)  # scale every size with the card
    draw = ImageDraw.Draw(img, "RGBA")

    # Scene number, large, with a small caption above it.
    cap = load_font(max(8, round(30 * unit)))
    draw.text((width / 2, height * 0.07), "SCENE", font=cap, fill=(255, 255, 255, 200), anchor="mt")
    big = load_font(max(12, round(200 * unit)))
    draw.text((width / 2, height * 0.21), str(scene), font=big, fill=(255, 255, 255, 255), anchor="mm")

    # The prompt on a translucent panel.
    left, top, right, bottom = text_box(width, height)
    draw.rounded_rectangle((left, top, right, bottom), radius=round(24 * unit), fill=(0, 0, 0, 96))
    pad = round(32 * unit)
    text = prompt.strip() or "(no prompt)"
    font, lines, line_h = _fit_prompt(
        text, right - left - 2 * pad, bottom - top - 2 * pad, max(8, round(44 * unit)), max(6, round(22 * unit))
    )
    y = top + pad
    colour = (255, 255, 255, 255) if prompt.strip() else (255, 255, 255, 140)
    for line in lines:
        draw.text((left + pad, y), line, font=font, fill=colour)
        y += line_h

    # The scene's own choices (its narrator, a pinned seed), then an honest label: this is a draft.
    label = load_font(max(6, round(24 * unit)))
    if note:
        if label.getlength(note) > width * 0.9:
            note = ellipsize(note, label, width * 0.9)
        draw.text((width / 2, height * 0.905), note, font=label, fill=(255, 255, 255, 220), anchor="mm")
    draw.text((width / 2, height * 0.94), _LABEL, font=label, fill=(255, 255, 255, 170), anchor="mm")
    draw.rectangle((0, 0, width - 1, height - 1), outline=(255, 255, 255, 60), width=max(1, round(4 * unit)))
    return img


def card_size(width: int | None, height: int | None) -> tuple[int, int]:
    """The card's size: both given, one given (the other follows 9:16), or the default 720x1280."""
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, round(width * 16 / 9)
    if height is not None:
        return round(height * 9 / 16), height
    return _DEFAULT_W, _DEFAULT_H


def card_note(request: ImageRequest) -> str:
    """What a card says under the prompt: the scene's voice and pinned seed, when it has them."""
    parts = ([f"voice {request.voice}"] if request.voice else []) + (
        [f"seed {request.seed}"] if request.seed is not None else [])
    return " · ".join(parts)


def _render_to(scene: int, prompt: str, width: int, height: int, dest: Path, note: str = "") -> None:
    img = render_card(scene, prompt, width, height, note=note)
    with atomic_path(dest) as tmp:
        img.save(tmp, format="PNG")  # the temp name ends in .part: name the format


class StoryboardBackend(ImageBackend):
    """Offline draft images: the prompt drawn on a card, for timing and layout review."""

    name = "storyboard"

    def __init__(self, options: StoryboardOptions | None = None) -> None:
        self.options = options or StoryboardOptions()

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> StoryboardBackend:
        """Use ``settings.width``/``height``; a missing side follows the 9:16 ratio."""
        return cls(StoryboardOptions(**dict(zip(("width", "height"), card_size(settings.width, settings.height)))))

    def fingerprint(self) -> dict[str, Any]:
        """Backend name, card size and drawing-code version."""
        return {
            "backend": "storyboard",
            "width": self.options.width,
            "height": self.options.height,
            "version": DRAW_VERSION,
        }

    async def generate(self, request: ImageRequest, report: Reporter = null_report) -> ImageResult:
        """Draw the card into ``request.dest`` (atomically), off the event loop."""
        dest = Path(request.dest)
        await asyncio.to_thread(_render_to, request.scene, request.prompt, self.options.width, self.options.height,
                                dest, card_note(request))
        fields = {"image_seed": request.seed} if request.seed is not None else {}
        return ImageResult(dest, fields)

    def cache_key(self, request: ImageRequest) -> dict[str, Any]:
        """A card shows its scene number, prompt, voice and pinned seed: each is part of its key."""
        return {**super().cache_key(request), "scene": request.scene, "note": card_note(request)}
