"""The topic folder the preview tests build from: three scenes of small real assets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from preview_helpers import mp3_duration, write_mp3, write_png


@pytest.fixture
def topic(tmp_path: Path) -> Path:
    """Three scenes: espeak-like 22050 Hz, edge-like 24000 Hz with motion frames and an SRT, and a
    non-9:16 image. Paths are written as the run wrote them (relative to another folder) to exercise
    resolution by name inside the topic folder."""
    root = tmp_path / "output" / "topic"
    root.mkdir(parents=True)
    write_mp3(root / "audio_scene_1.mp3", 1.0, 22050)
    write_mp3(root / "audio_scene_2.mp3", 1.5, 24000, 660.0)
    write_mp3(root / "audio_scene_3.mp3", 0.8, 22050, 330.0)
    write_png(root / "image_scene_1.png", (200, 40, 40))
    write_png(root / "image_scene_2.png", (40, 200, 40))
    write_png(root / "image_scene_3.png", (40, 40, 200), size=(640, 480))
    motion = root / "motion_scene_2"
    motion.mkdir()
    frames = []
    for i in range(1, 9):
        write_png(motion / f"frame_{i:04d}.png", (20 * i, 100, 150))
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
