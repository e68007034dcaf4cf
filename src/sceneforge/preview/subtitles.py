"""Subtitles for the preview: SRT cues, or script chunks timed by length, drawn as overlays.

Subtitles are drawn with Pillow rather than ffmpeg's ``subtitles`` filter: the
CJK font file is loaded directly (libass in a static ffmpeg finds fonts through
fontconfig, by family name, and silently falls back to tofu when that fails),
no file path has to survive the filter-argument escaping (``:``, ``'``, ``\\``,
Korean folder names), and the preview composes every frame itself anyway.
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image, ImageDraw

from ..fonts import ellipsize, load_font, wrap_text
from .assets import ResolvedScene

__all__ = ["Cue", "SubtitleRenderer", "parse_srt", "script_cues"]

Cue = tuple[float, float, str]  # (start, end, text), seconds from the scene's start

_TS = r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_CUE_TIMES = re.compile(rf"{_TS}\s*-->\s*{_TS}")


def _secs(h: str, m: str, s: str, frac: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def parse_srt(text: str) -> list[Cue]:
    """SRT text as (start, end, text) cues in seconds; malformed blocks are skipped."""
    cues = []
    for block in re.split(r"\n\s*\n", text.lstrip("\ufeff").replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            m = _CUE_TIMES.search(line)
            if m:
                body = re.sub(r"<[^>]+>", "", "\n".join(lines[i + 1 :])).strip()
                start, end = _secs(*m.groups()[:4]), _secs(*m.groups()[4:])
                if body and end > start:
                    cues.append((start, end, body))
                break
    return cues


def script_cues(script: str, duration: float, font: Any, max_w: float) -> list[Cue]:
    """Split a script into chunks of at most two lines, timed by their share of the characters."""
    chunks: list[str] = []
    for sentence in re.split(r"(?<=[.!?。！？…])\s+|\n+", script.strip()):
        lines = wrap_text(sentence, font, max_w)
        chunks += ["\n".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]
    weights = [max(1, len(re.sub(r"\s", "", c))) for c in chunks]
    total, t, cues = sum(weights), 0.0, []
    for chunk, w in zip(chunks, weights):
        end = t + duration * w / total
        cues.append((t, end, chunk))
        t = end
    return cues


class SubtitleRenderer:
    """Draws cue text once per cue as a small RGBA overlay, reused for every frame it shows on."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        unit = width / 720
        self.font = load_font(max(10, round(40 * unit)))
        self.pad = round(16 * unit)
        self.max_w = width * 0.86 - 2 * self.pad
        self.bottom = round(height * 0.82)  # above the controls short-video players draw at the bottom
        self._cache: dict[str, tuple[Image.Image, tuple[int, int]]] = {}

    def overlay(self, text: str) -> tuple[Image.Image, tuple[int, int]]:
        """The overlay image for ``text`` and where to paste it (top-left) on a frame."""
        if text not in self._cache:
            self._cache[text] = self._draw(text)
        return self._cache[text]

    def _draw(self, text: str) -> tuple[Image.Image, tuple[int, int]]:
        lines = wrap_text(text, self.font, self.max_w)
        if len(lines) > 3:
            lines = lines[:2] + [ellipsize(lines[2], self.font, self.max_w)]
        line_h = round(self.font.size * 1.35)
        w = int(max(self.font.getlength(s) for s in lines) + 2 * self.pad)
        h = line_h * len(lines) + 2 * self.pad
        img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        d.rounded_rectangle((0, 0, w - 1, h - 1), radius=self.pad, fill=(0, 0, 0, 150))
        for i, line in enumerate(lines):
            d.text((w / 2, self.pad + i * line_h), line, font=self.font, fill="white", anchor="ma",
                   stroke_width=max(1, round(self.font.size / 20)), stroke_fill="black")
        return img, ((self.width - w) // 2, self.bottom - h)

    def cues_for(self, sc: ResolvedScene, duration: float) -> list[Cue]:
        """The scene's cues: its SRT when it has usable cues, else its script timed over ``duration``."""
        if sc.subtitle is not None:
            cues = parse_srt(sc.subtitle.read_text(encoding="utf-8", errors="replace"))
            if cues:
                return cues
        return script_cues(sc.script, duration, self.font, self.max_w) if sc.script.strip() else []
