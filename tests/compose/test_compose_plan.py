"""The timeline and the captions derived from it, and the word-timing sidecar (no rendering)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from compose_helpers import NARRATION_S, words_sidecar

from sceneforge.compose import CaptionStyle, plan_compose, plan_timeline
from sceneforge.compose.captions import caption_events, write_ass
from sceneforge.compose.inputs import encoder_lead
from sceneforge.compose.options import ComposeOptions
from sceneforge.tts.base import Cue
from sceneforge.tts.words import read_words, words_path, write_words


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_timeline_total_is_the_exact_sum_within_half_a_frame(fps: int) -> None:
    narrations = [1.234, 0.5, 2.71828, 0.333, 4.0] * 8
    tl = plan_timeline(narrations, fps=fps, pad=0.25, crossfade=0.3)
    assert abs(tl.duration - sum(d + 0.25 for d in narrations)) <= 0.5 / fps
    for i, d in enumerate(narrations):
        assert tl.slot(i) >= d  # a narration is never cut


def test_pictures_minus_crossfades_are_the_slots() -> None:
    tl = plan_timeline([1.0, 2.0, 1.5], fps=30, pad=0.25, crossfade=0.3)
    clips = tl.clips()
    assert tl.crossfade_frames == 9
    assert sum(c.frames for c in clips) - 2 * tl.crossfade_frames == tl.total_frames
    # each crossfade starts where the next picture starts, centred on the slot boundary
    assert [round(o * 30) for o in tl.transition_offsets()] == [c.first for c in clips[1:]]
    for c, boundary in zip(clips[1:], tl.bounds[1:-1]):
        assert c.first == boundary - 4 and clips[c.index - 1].end == boundary + 5


def test_crossfade_never_longer_than_a_scene_and_none_for_one_scene() -> None:
    assert plan_timeline([0.05, 1.0], fps=30, pad=0.0, crossfade=1.0).crossfade_frames == 2
    assert plan_timeline([3.0], fps=30, pad=0.25, crossfade=0.3).crossfade_frames == 0
    with pytest.raises(ValueError):
        plan_timeline([], fps=30, pad=0.25, crossfade=0.3)


def test_caption_times_are_slot_start_plus_narration_time(topic: Path) -> None:
    words = [(0.0, 0.2, "하나"), (0.25, 0.45, "둘"), (1.1, 1.3, "셋")]  # a pause: a new caption
    words_sidecar(topic, 2, words)
    plan = plan_compose(topic, ComposeOptions(size=(360, 640)))
    style = CaptionStyle(360, 640)
    events = caption_events(plan.topic.scenes, plan.timeline, "words", style)
    s2 = plan.timeline.start(1)
    word_events = [e for e in events if s2 <= e.start < plan.timeline.end(1)]
    assert [round(e.start - s2, 3) for e in word_events] == [0.0, 0.25, 1.1]
    assert "{\\c&H00D7FF&}하나{\\c&HFFFFFF&}" in word_events[0].text and word_events[0].text.endswith("둘")
    assert "하나" not in word_events[2].text  # after the pause, a new line
    assert all(e.end <= plan.timeline.end(i) + 1e-9 for i in range(3) for e in events
               if plan.timeline.start(i) <= e.start < plan.timeline.end(i))
    lines = caption_events(plan.topic.scenes, plan.timeline, "lines", style)
    assert [round(e.start, 3) for e in lines] == [0.0, round(s2, 3), round(plan.timeline.start(2), 3)]
    assert caption_events(plan.topic.scenes, plan.timeline, "none", style) == []


def test_ass_script_escapes_text_and_keeps_centiseconds(topic: Path, tmp_path: Path) -> None:
    (topic / "audio_scene_1.srt").write_text("1\n00:00:00,010 --> 00:00:00,500\n{\\b1}a\\Nb\n", "utf-8")
    plan = plan_compose(topic, ComposeOptions(size=(360, 640), captions="lines"))
    style = CaptionStyle(360, 640)
    ass = write_ass(tmp_path / "c.ass", caption_events(plan.topic.scenes, plan.timeline, "lines", style), style)
    dialogue = [ln for ln in ass.read_text(encoding="utf-8").splitlines() if ln.startswith("Dialogue:")]
    assert dialogue[0].startswith("Dialogue: 0,0:00:00.01,0:00:00.50,Caption,")
    assert "{" not in dialogue[0].split(",,", 1)[1] and "\\b1" not in dialogue[0]
    assert "PlayResX: 360" in ass.read_text(encoding="utf-8")


def test_scene_without_srt_falls_back_to_its_script(topic: Path) -> None:
    data = json.loads((topic / "scenes.json").read_text(encoding="utf-8"))
    del data["scenes"][0]["subtitle_path"]
    (topic / "audio_scene_1.srt").unlink()
    (topic / "scenes.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    plan = plan_compose(topic, ComposeOptions(size=(360, 640)))
    events = caption_events(plan.topic.scenes, plan.timeline, "words", CaptionStyle(360, 640))
    first = [e for e in events if e.start < plan.timeline.end(0)]
    assert [e.text for e in first] == ["첫 장면입니다"] and first[0].end <= NARRATION_S + 1e-6


def test_words_sidecar_round_trip_and_stale_or_broken_ones_ignored(tmp_path: Path) -> None:
    audio = tmp_path / "audio_scene_1.mp3"
    audio.write_bytes(b"ID3 first narration")
    assert read_words(audio) is None
    write_words(audio, [Cue(0.0, 0.3, "hello"), Cue(0.35, 0.7, "world")])
    assert words_path(audio).name == "audio_scene_1.words.json"
    assert read_words(audio) == [Cue(0.0, 0.3, "hello"), Cue(0.35, 0.7, "world")]
    audio.write_bytes(b"ID3 a newer narration")  # re-generated by an engine without word timings
    assert read_words(audio) is None
    write_words(audio, [Cue(0.0, 0.3, "hello")])
    data = json.loads(words_path(audio).read_text())
    for broken in ([[0.5, 0.2, "x"]], [[0, math.inf, "x"]], [[0, 1]], "nope", [[0.5, 0.6, "a"], [0.1, 0.2, "b"]]):
        words_path(audio).write_text(json.dumps({**data, "words": broken}).replace("Infinity", "1e999"))
        assert read_words(audio) is None, broken


def test_encoder_lead_only_for_headerless_mp3_with_exact_duration(topic: Path) -> None:
    audio = topic / "audio_scene_1.mp3"
    assert encoder_lead(audio, NARRATION_S) == pytest.approx(1105 / 22050)
    from compose_helpers import mp3_length

    assert encoder_lead(audio, mp3_length(audio)) == 0.0  # the engine recorded the file's own length
    assert encoder_lead(topic / "image_scene_1.png", 0.1) == 0.0


@pytest.mark.parametrize("size", ["1080x1920", "720x1280", "1080x1080", "1920x1080"])
def test_caption_zone_inside_the_frame_and_clear_of_the_interface(size: str) -> None:
    from sceneforge.compose import parse_size, safe_margins

    w, h = parse_size(size)
    left, right, bottom = safe_margins(w, h)
    x0, y0, x1, y1 = CaptionStyle(w, h).zone()
    assert 0 < x0 < x1 < w and 0 < y0 < y1 < h
    assert y1 == h - bottom and bottom >= round(0.09 * h) and right >= left
    if h > w:  # portrait players: description and buttons cover the bottom quarter and the right edge
        assert bottom >= 0.25 * h and right >= 0.15 * w and y0 > 0.4 * h
