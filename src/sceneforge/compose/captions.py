"""Burned-in captions as an ASS script: word by word with the spoken word highlighted, or line by line.

Times come from the timeline (:mod:`.timeline`): a caption starts at its
scene's slot start plus its time in the narration, rounded to the centisecond
ASS keeps (well within a frame). Word timings come from the narration's words
sidecar (:mod:`sceneforge.tts.words`); a scene without them falls back to its
SRT lines, and a scene without an SRT to its script, timed by length over the narration.

Placement keeps clear of the Shorts/Reels/TikTok interface (:func:`safe_margins`):
on a portrait frame the captions sit above the bottom 27% (the description,
music ticker and progress bar) and away from the right 16% (the action
buttons). The font is the bundled Noto Sans CJK, loaded by libass from a
folder given to the ``subtitles`` filter, so Korean never falls back to tofu.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fonts import load_font
from ..preview.subtitles import script_cues
from ..tts.base import Cue
from .inputs import SceneInput
from .timeline import Timeline

__all__ = ["FONT_FAMILY", "HIGHLIGHT", "CaptionStyle", "Event", "caption_events", "safe_margins", "write_ass"]

FONT_FAMILY = "Noto Sans CJK JP"  # the family name inside NotoSansCJKjp-Regular.otf
TEXT_RGB = (255, 255, 255)
HIGHLIGHT = (255, 215, 0)  # the word being spoken
WORD_GAP = 0.6  # a pause this long between words starts a new caption
MAX_WORDS = 6


@dataclass(frozen=True)
class Event:
    """One caption on screen from ``start`` to ``end`` seconds (video time); ``text`` is ASS markup."""

    start: float
    end: float
    text: str


def safe_margins(width: int, height: int) -> tuple[int, int, int]:
    """(left, right, bottom) caption margins in pixels that keep clear of the players' interface."""
    if height > width * 1.3:  # portrait: Shorts, Reels, TikTok
        return round(width * 0.08), round(width * 0.16), round(height * 0.27)
    if width > height * 1.3:  # landscape: the progress bar and controls
        return round(width * 0.10), round(width * 0.10), round(height * 0.09)
    return round(width * 0.08), round(width * 0.12), round(height * 0.14)


@dataclass(frozen=True)
class CaptionStyle:
    """Size and placement for one frame size."""

    width: int
    height: int

    @property
    def font_size(self) -> int:
        return max(12, round(min(self.width, self.height) * 0.075))

    @property
    def outline(self) -> float:
        return max(1.5, round(self.font_size * 0.09, 1))

    @property
    def text_width(self) -> int:
        left, right, _ = safe_margins(self.width, self.height)
        return self.width - left - right

    def zone(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): where captions appear (up to three lines above the bottom margin)."""
        left, right, bottom = safe_margins(self.width, self.height)
        y1 = self.height - bottom
        return left, max(0, y1 - round(self.font_size * 1.3 * 3)), self.width - right, y1


def _ass_colour(rgb: tuple[int, int, int], alpha: int = 0) -> str:
    r, g, b = rgb
    return f"&H{alpha:02X}{b:02X}{g:02X}{r:02X}"


def _tag_colour(rgb: tuple[int, int, int]) -> str:
    """A colour as an override tag wants it: ``&HBBGGRR&``."""
    r, g, b = rgb
    return f"&H{b:02X}{g:02X}{r:02X}&"


def _escape(text: str) -> str:
    """Plain text as ASS dialogue text: override braces and backslashes neutralised, newlines kept."""
    text = text.replace("\\", "\u29f5").replace("{", "\uff5b").replace("}", "\uff5d")
    return "\\N".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _pages(words: list[Cue], max_width: float, font_size: int) -> list[list[Cue]]:
    """Words grouped into one-line captions: a new one after a pause, or when the line is full."""
    font = load_font(font_size)
    pages: list[list[Cue]] = []
    for w in words:
        page = pages[-1] if pages else None
        if page and w.start - page[-1].end < WORD_GAP and len(page) < MAX_WORDS and \
                font.getlength(" ".join(x.text for x in [*page, w])) <= max_width:
            page.append(w)
        else:
            pages.append([w])
    return pages


def _word_events(words: list[Cue], offset: float, slot_end: float, style: CaptionStyle) -> list[Event]:
    """One event per word: its caption line with that word highlighted, until the next word starts."""
    events: list[Event] = []
    hi, plain = _tag_colour(HIGHLIGHT), _tag_colour(TEXT_RGB)
    pages = _pages(words, style.text_width * 0.96, style.font_size)
    for p, page in enumerate(pages):
        following = pages[p + 1][0].start if p + 1 < len(pages) else None
        page_end = min(page[-1].end + 0.3, following if following is not None else page[-1].end + 0.3)
        for k, w in enumerate(page):
            end = page[k + 1].start if k + 1 < len(page) else max(page_end, w.end)
            parts = [(f"{{\\c{hi}}}{_escape(x.text)}{{\\c{plain}}}" if j == k else _escape(x.text))
                     for j, x in enumerate(page)]
            events.append(Event(offset + w.start, min(offset + end, slot_end), " ".join(parts)))
    return events


def _line_cues(sc: SceneInput, style: CaptionStyle) -> list[Cue]:
    if sc.lines:
        return sc.lines
    script = sc.scene.script
    if not script.strip():
        return []
    font = load_font(style.font_size)
    return [Cue(a, b, t) for a, b, t in script_cues(script, sc.duration, font, style.text_width * 0.96)]


def caption_events(scenes: list[SceneInput], timeline: Timeline, mode: str, style: CaptionStyle) -> list[Event]:
    """Every caption of the video in time order (empty for ``mode="none"``)."""
    events: list[Event] = []
    if mode == "none":
        return events
    for i, sc in enumerate(scenes):
        offset, slot_end = timeline.start(i), timeline.end(i)
        if mode == "words" and sc.words:
            events += _word_events(sc.words, offset, slot_end, style)
            continue
        for cue in _line_cues(sc, style):
            events.append(Event(offset + cue.start, min(offset + cue.end, slot_end), _escape(cue.text)))
    return [e for e in events if e.end - e.start >= 0.01 and e.text]


def _ts(t: float) -> str:
    cs = max(0, round(t * 100))
    h, cs = divmod(cs, 360_000)
    m, cs = divmod(cs, 6000)
    s, cs = divmod(cs, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def write_ass(path: Path, events: list[Event], style: CaptionStyle) -> Path:
    """Write the ASS script (PlayRes = the frame, so sizes and margins are pixels)."""
    left, right, bottom = safe_margins(style.width, style.height)
    head = [
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {style.width}", f"PlayResY: {style.height}",
        "WrapStyle: 0", "ScaledBorderAndShadow: yes", "YCbCr Matrix: TV.709", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
        "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
        "Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Caption,{FONT_FAMILY},{style.font_size},{_ass_colour(TEXT_RGB)},{_ass_colour(HIGHLIGHT)},"
        f"&H00000000,&H64000000,-1,0,0,0,100,100,0,0,1,{style.outline},{max(1, style.font_size // 24)},"
        f"2,{left},{right},{bottom},1",
        "", "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    body = [f"Dialogue: 0,{_ts(e.start)},{_ts(e.end)},Caption,,0,0,0,,{e.text}" for e in events]
    path.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return path
