"""Missing or unreadable assets name their scene, in the preview and the contact sheet alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sceneforge.errors import AssetMissingError
from sceneforge.preview import make_contact_sheet, make_preview


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
