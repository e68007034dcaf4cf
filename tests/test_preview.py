"""preview.mp4 and the contact sheet, built from a small real fixture and checked with PyAV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import lameenc
import numpy as np
import pytest
from mutagen.mp3 import MP3
from PIL import Image

from sceneforge.errors import AssetMissingError
from sceneforge.preview import (
    CONTACT_SHEET_NAME,
    make_contact_sheet,
    make_preview,
    parse_srt,
    sheet_geometry,
)


def mp3_duration(path: Path) -> float:
    return float(MP3(str(path)).info.length)


def _mp3(path: Path, seconds: float, rate: int, freq: float = 440.0) -> None:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * math.pi * freq * t) * 8000).astype("<i2").tobytes()
    enc = lameenc.Encoder()
    enc.set_bit_rate(64)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(7)
    path.write_bytes(enc.encode(pcm) + enc.flush())


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (720, 1280)) -> None:
    img = Image.new("RGB", size, colour)
    img.paste((255, 255, 255), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    img.save(path)


@pytest.fixture
def topic(tmp_path: Path) -> Path:
    """Three scenes: espeak-like 22050 Hz, edge-like 24000 Hz with motion frames and an SRT, and a
    non-9:16 image. Paths are written as the run wrote them (relative to another folder) to exercise
    resolution by name inside the topic folder."""
    root = tmp_path / "output" / "topic"
    root.mkdir(parents=True)
    _mp3(root / "audio_scene_1.mp3", 1.0, 22050)
    _mp3(root / "audio_scene_2.mp3", 1.5, 24000, 660.0)
    _mp3(root / "audio_scene_3.mp3", 0.8, 22050, 330.0)
    _png(root / "image_scene_1.png", (200, 40, 40))
    _png(root / "image_scene_2.png", (40, 200, 40))
    _png(root / "image_scene_3.png", (40, 40, 200), size=(640, 480))
    motion = root / "motion_scene_2"
    motion.mkdir()
    frames = []
    for i in range(1, 9):
        _png(motion / f"frame_{i:04d}.png", (20 * i, 100, 150))
        frames.append(f"elsewhere/topic/motion_scene_2/frame_{i:04d}.png")
    (root / "audio_scene_2.srt").write_text(
        "1\n00:00:00,000 --> 00:00:00,700\n첫 번째 자막\n\n2\n00:00:00,700 --> 00:00:01,500\n두 번째\n",
        encoding="utf-8",
    )
    scenes = [
        {"script": "안녕하세요. 이것은 첫 번째 장면입니다.", "audio_path": "elsewhere/topic/audio_scene_1.mp3",
         "image_path": "elsewhere/topic/image_scene_1.png", "extra": "kept"},
        {"script": "두 번째 장면", "audio_path": str(root / "audio_scene_2.mp3"),
         "audio_duration": mp3_duration(root / "audio_scene_2.mp3"),
         "subtitle_path": "elsewhere/topic/audio_scene_2.srt",
         "image_path": "elsewhere/topic/image_scene_2.png", "motion_frames_path": frames, "motion_fps": 16},
        {"script": "Third scene, in English, with a longer sentence to wrap.",
         "audio_path": "audio_scene_3.mp3", "image_path": "image_scene_3.png"},
    ]
    (root / "scenes.json").write_text(json.dumps({"topic": "t", "scenes": scenes}, ensure_ascii=False), "utf-8")
    return root


def _expected_duration(root: Path) -> float:
    return sum(mp3_duration(root / f"audio_scene_{n}.mp3") for n in (1, 2, 3))


def test_preview_video_and_audio(topic: Path) -> None:
    progress: list[tuple[int, int]] = []
    result = make_preview(topic, on_progress=lambda d, t: progress.append((d, t)))
    assert result.path == topic / "preview.mp4" and result.path.is_file()
    expected = _expected_duration(topic)
    assert abs(result.duration - expected) < 1e-6
    assert progress[-1][0] == progress[-1][1] == round(expected * 24)
    assert not list(topic.glob(".*.part"))  # the temporary was renamed, nothing left behind

    with av.open(str(result.path)) as c:
        assert abs(c.duration / 1_000_000 - expected) < 0.2
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 720, 1280)
        assert v.codec_context.pix_fmt == "yuv420p"
        assert c.streams.audio[0].codec_context.name == "aac"
        # The first frame shows scene 1's red image with a subtitle at the bottom.
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    r, g, b = frame[50, 50].astype(int)
    assert r > 150 and g < 90 and b < 90
    band = frame[int(1280 * 0.70) : int(1280 * 0.82), 100:620]
    assert (band.max(axis=2) > 240).mean() > 0.005  # white subtitle text is drawn there


def test_preview_audio_covers_every_scene(topic: Path) -> None:
    result = make_preview(topic)
    with av.open(str(result.path)) as c:
        samples = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].rate
    pcm = np.concatenate(samples, axis=1)[0]
    # Each scene's tone is present near its middle (scene 3 starts at 2.5 s).
    for t in (0.5, 1.75, 2.9):
        window = pcm[int(t * rate) : int(t * rate) + 1000]
        assert np.abs(window).max() > 0.05, t


def test_missing_image_names_the_scene(topic: Path) -> None:
    data = json.loads((topic / "scenes.json").read_text("utf-8"))
    del data["scenes"][1]["motion_frames_path"]
    (topic / "scenes.json").write_text(json.dumps(data), "utf-8")
    (topic / "image_scene_2.png").unlink()
    with pytest.raises(AssetMissingError, match=r"scene 2: .*image_scene_2\.png does not exist; run `sceneforge run`"):
        make_preview(topic)
    with pytest.raises(FileNotFoundError, match="scene 2"):
        make_contact_sheet(topic)
    assert not (topic / "preview.mp4").exists()


def test_missing_motion_frame_names_the_scene(topic: Path) -> None:
    (topic / "motion_scene_2" / "frame_0005.png").unlink()
    with pytest.raises(AssetMissingError, match=r"scene 2: motion_frames_path \S+frame_0005\.png does not exist"):
        make_preview(topic)


def test_unreadable_image_names_the_scene(topic: Path) -> None:
    (topic / "image_scene_3.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(AssetMissingError, match=r"scene 3: .*image_scene_3\.png is not a readable image"):
        make_contact_sheet(topic)


def test_missing_audio_names_the_scene(topic: Path) -> None:
    (topic / "audio_scene_3.mp3").unlink()
    with pytest.raises(AssetMissingError, match=r"scene 3: audio_path audio_scene_3\.mp3 does not exist"):
        make_preview(topic)


def test_contact_sheet_grid(topic: Path) -> None:
    path = make_contact_sheet(topic)
    assert path == topic / CONTACT_SHEET_NAME
    geo = sheet_geometry(3)
    assert (geo.columns, geo.rows) == (3, 1)
    m = geo.margin
    assert geo.size == (3 * geo.cell_width + 4 * m, geo.cell_height + 2 * m)
    with Image.open(path) as im:
        assert im.size == geo.size
        x, y = geo.cell_origin(0)
        assert im.getpixel((x + 5, y + 5))[0] > 150  # scene 1's red thumbnail
        caption = np.asarray(im.convert("L").crop((x, y + geo.thumb_height, x + geo.cell_width, y + geo.cell_height)))
        assert (caption > 180).mean() > 0.01  # number, duration and script drawn


def test_sheet_geometry_wraps_rows() -> None:
    geo = sheet_geometry(9)
    assert (geo.columns, geo.rows) == (4, 3)
    assert geo.size[0] == 4 * geo.cell_width + 5 * geo.margin
    assert geo.size[1] == 3 * geo.cell_height + 4 * geo.margin


def test_parse_srt() -> None:
    text = (
        "\ufeff1\r\n00:00:01,500 --> 00:00:02.25\r\n<i>안녕</i>\r\n\r\n"
        "bad block\r\n\r\n3\r\n00:00:03,000 --> 00:00:04,000\r\n끝\r\n"
    )
    assert parse_srt(text) == [(1.5, 2.25, "안녕"), (3.0, 4.0, "끝")]
