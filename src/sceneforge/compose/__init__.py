"""The final cut: ``final.mp4`` ready to publish, and ``cover.jpg`` (``sceneforge compose``).

The modules stack without circles: :mod:`.options` and :mod:`.timeline` at the
bottom (what is asked; when each scene, narration and caption happens),
:mod:`.inputs` (the topic's files, checked), :mod:`.process` (one ffmpeg with
progress and cancellation), then :mod:`.captions` (ASS), :mod:`.audio` (mix,
ducking, loudness), :mod:`.video` (the filter graph), :mod:`.cover`, and
:mod:`.render` on top. See docs/compose.md.
"""

from __future__ import annotations

from .captions import CaptionStyle, safe_margins
from .cover import COVER_NAME
from .options import CAPTION_MODES, SIZES, TRANSITIONS, ComposeOptions, parse_size
from .render import FINAL_NAME, ComposeResult, compose_topic, plan_compose
from .timeline import Timeline, plan_timeline

__all__ = [
    "CAPTION_MODES", "COVER_NAME", "FINAL_NAME", "SIZES", "TRANSITIONS", "CaptionStyle", "ComposeOptions",
    "ComposeResult", "Timeline", "compose_topic", "parse_size", "plan_compose", "plan_timeline", "safe_margins",
]
