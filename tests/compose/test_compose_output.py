"""The final cut, measured: decoded with PyAV, loudness by ffmpeg's ebur128. Rendered once for the module.

The topic (compose_helpers.build_topic): three scenes whose narration is a
0.5 s 1 kHz tone then 0.7 s of silence; a 150 Hz music loop under them. Scene
1 is a portrait still with an SRT line, scene 2 motion frames (0.5 s, held)
with word timings, scene 3 a landscape still (blurred fill) with an SRT line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from compose_helpers import (
    COLOURS,
    FPS,
    MOTION_COLOURS,
    MUSIC_HZ,
    NARRATION_S,
    TONE_HZ,
    TONE_S,
    band_db,
    build_topic,
    caption_pixels,
    decode_audio,
    decode_frames,
    ebur128,
    nearest_colour,
    stream_facts,
    words_sidecar,
    write_music,
)
from PIL import Image

from sceneforge.compose import CaptionStyle, ComposeOptions, compose_topic

SIZE = (360, 640)
PAD = 0.25
WORDS = [(0.0, 0.22, "하나"), (0.25, 0.45, "둘")]


@dataclass
class Render:
    topic: Path
    path: Path
    starts: list[float]  # exact scene starts: running sums of narration + pad
    total: float
    frames: list[np.ndarray]
    audio: np.ndarray
    rate: int


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    root = build_topic(tmp_path_factory.mktemp("c") / "out" / "topic")
    words_sidecar(root, 2, WORDS)
    music = root.parent / "music.mp3"
    write_music(music)
    res = compose_topic(root, ComposeOptions(size=SIZE, music=music, pad=PAD))
    lengths = [NARRATION_S + PAD] * 3
    starts = [sum(lengths[:i]) for i in range(3)]
    audio, rate = decode_audio(res.path)
    return Render(root, res.path, starts, sum(lengths), decode_frames(res.path), audio, rate)


def frame_at(r: Render, t: float) -> np.ndarray:
    return r.frames[min(len(r.frames) - 1, int(t * FPS))]


def test_stream_format_and_title(render: Render) -> None:
    facts = stream_facts(render.path)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert facts["size"] == SIZE and facts["fps"] == FPS
    assert facts["audio"] == "aac" and facts["rate"] == 48000
    assert facts["title"] == "테스트 제목"
    with open(render.path, "rb") as f:  # +faststart: the index (moov) comes before the media (mdat)
        head = f.read(4096)
    assert 0 <= head.find(b"moov") < max(head.find(b"mdat"), 4096)


def test_duration_is_the_slots_minus_nothing_lost_to_crossfades(render: Render) -> None:
    # Every picture is extended by half a crossfade at inner boundaries, so the scene lengths minus the
    # crossfades are the sum of narration + pad.
    assert abs(len(render.frames) / FPS - render.total) <= 1 / FPS
    assert abs(float(stream_facts(render.path)["duration"]) - render.total) <= 1 / FPS


def test_scenes_in_order_and_motion_held(render: Render) -> None:
    palette = [COLOURS[0], *MOTION_COLOURS, COLOURS[2]]
    mids = [s + (e - s) / 2 for s, e in zip(render.starts, [*render.starts[1:], render.total])]
    got = [nearest_colour(frame_at(render, t), palette) for t in mids]
    assert got == [0, len(MOTION_COLOURS), len(palette) - 1]  # scene 2 holds its last motion frame
    early = nearest_colour(frame_at(render, render.starts[1] + 0.25), palette)
    assert 1 <= early < len(MOTION_COLOURS)  # ...after playing the earlier ones


def test_loudness_and_true_peak(render: Render) -> None:
    integrated, peak = ebur128(render.path)
    assert -15.0 <= integrated <= -13.0
    assert peak <= -1.0


def test_narration_at_each_scene_start_never_overlapping(render: Render) -> None:
    a, rate = render.audio, render.rate
    for s in render.starts:
        speaking = band_db(a, rate, s + 0.1, s + TONE_S - 0.1, TONE_HZ)
        silent = band_db(a, rate, s + TONE_S + 0.15, s + TONE_S + 0.6, TONE_HZ)
        assert speaking > -30 and speaking - silent > 40


def test_music_ducked_under_narration(render: Render) -> None:
    a, rate = render.audio, render.rate
    for s, nxt in zip(render.starts, render.starts[1:]):
        under = band_db(a, rate, s + 0.15, s + TONE_S - 0.05, MUSIC_HZ)
        between = band_db(a, rate, nxt - 0.3, nxt - 0.05, MUSIC_HZ)
        assert between > -40, "the music is audible between scenes"
        assert between - under >= 10


def test_captions_where_the_narration_is_and_nowhere_else(render: Render) -> None:
    zone = CaptionStyle(*SIZE).zone()
    s1, s2, s3 = render.starts
    shown = {t: caption_pixels(frame_at(render, t), zone) for t in
             (s1 + 0.25, s2 + 0.1, s2 + 0.35, s3 + 0.25, s1 + 0.9, s2 + 1.0, s3 + 0.9)}
    for t in (s1 + 0.25, s3 + 0.25):
        assert shown[t][0] > 30, f"a line caption at {t:.2f} s"
    for t in (s2 + 0.1, s2 + 0.35):
        assert shown[t][0] > 10 and shown[t][1] > 10, f"word caption with its highlighted word at {t:.2f} s"
    for t in (s1 + 0.9, s2 + 1.0, s3 + 0.9):
        assert shown[t] == (0, 0), f"no caption in the silence at {t:.2f} s"


def test_captions_stay_out_of_the_interface_zones(render: Render) -> None:
    w, h = SIZE
    frame = frame_at(render, render.starts[0] + 0.25)
    assert caption_pixels(frame, (0, 0, w, h))[0] > 30
    assert caption_pixels(frame, (0, round(h * 0.74), w, h)) == (0, 0)  # bottom: description, buttons
    assert caption_pixels(frame, (round(w * 0.86), 0, w, h)) == (0, 0)  # right: like/comment/share rail
    assert caption_pixels(frame, (0, 0, w, round(h * 0.4))) == (0, 0)


def _onset(a: np.ndarray, rate: int, t0: float, t1: float) -> float:
    """When the 1 kHz narration tone starts between t0 and t1 (5 ms steps, 10 ms windows)."""
    steps = np.arange(t0, t1, 0.005)
    levels = [band_db(a, rate, t, t + 0.01, TONE_HZ) for t in steps]
    top = max(levels)
    return float(next(t for t, lv in zip(steps, levels) if lv > top - 12)) + 0.005


def test_each_caption_starts_within_a_frame_of_its_narration(render: Render) -> None:
    zone = CaptionStyle(*SIZE).zone()
    for s in render.starts:
        heard = _onset(render.audio, render.rate, max(0.0, s - 0.2), s + 0.2)
        first = next(k for k in range(max(0, int((s - 0.3) * FPS)), int((s + 0.3) * FPS))
                     if caption_pixels(render.frames[k], zone)[0] > 10)
        assert math.isclose(first / FPS, heard, abs_tol=1 / FPS + 0.005), (first / FPS, heard)


def test_cover_has_the_first_image_and_the_title(render: Render) -> None:
    cover = Image.open(render.topic / "cover.jpg")
    assert cover.format == "JPEG" and cover.size == SIZE
    px = np.asarray(cover.convert("RGB"))
    assert nearest_colour(px, [COLOURS[0], COLOURS[1], COLOURS[2]]) == 0
    assert caption_pixels(px, (0, 0, SIZE[0], SIZE[1] // 2))[0] > 30  # the white title text


def test_no_music_normalises_the_narration_alone_and_cuts_without_transition(topic: Path) -> None:
    res = compose_topic(topic, ComposeOptions(size=SIZE, transition="none", captions="none"))
    integrated, peak = ebur128(res.path)
    assert -15.0 <= integrated <= -13.0 and peak <= -1.0
    total = 3 * (NARRATION_S + 0.25)
    frames = decode_frames(res.path)
    assert abs(len(frames) / FPS - total) <= 1 / FPS
    zone = CaptionStyle(*SIZE).zone()
    assert all(caption_pixels(f, zone) == (0, 0) for f in frames[::5])
    assert res.captions == ("none", "none", "none")


def _line_positions(frames: list[np.ndarray], row: int, start_x: int) -> np.ndarray:
    """Sub-pixel x of one bright vertical line in each frame, followed from frame to frame."""
    out, x = [], float(start_x)
    for f in frames:
        band = f[row - 10:row + 10].astype(float).mean(axis=(0, 2))
        lo = int(x) - 8
        k = lo + int(np.argmax(band[lo:lo + 17]))
        seg = band[k - 4:k + 5] - band[k - 4:k + 5].min()
        x = float((np.arange(k - 4, k + 5) * seg).sum() / seg.sum())
        out.append(x)
    return np.array(out)


def test_a_still_moves_smoothly(topic: Path) -> None:
    grid = np.full((640, 360, 3), 40, np.uint8)
    for x in range(20, 360, 40):
        grid[:, x:x + 3] = 255
    Image.fromarray(grid).save(topic / "image_scene_1.png")
    data = json.loads((topic / "scenes.json").read_text(encoding="utf-8"))
    data["scenes"] = data["scenes"][:1]
    (topic / "scenes.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    res = compose_topic(topic, ComposeOptions(size=SIZE, captions="none", pad=0.8))
    frames = decode_frames(res.path)
    start = 20 + 40 * 7 + 1  # a line at 3/4 of the width: it moves outwards as the picture zooms in
    x = _line_positions(frames, SIZE[1] // 3, start)
    t = np.arange(len(x))
    wobble = x - np.polyval(np.polyfit(t, x, 2), t)
    assert x[-1] - x[0] > 5  # the Ken Burns move
    assert np.sqrt(np.mean(wobble ** 2)) < 0.15 and np.abs(wobble).max() < 0.4  # sub-pixel smooth
