"""Bad input is caught before any work, every problem at once, naming scene N and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sceneforge.errors import SceneValidationError
from sceneforge.scenes import load_scene_file, parse_state, validate_scenes


def problems(data, **kw) -> list[str]:
    with pytest.raises(SceneValidationError) as ei:
        parse_state(data, default_topic="t", **kw)
    assert isinstance(ei.value, ValueError)  # the original system's type
    return ei.value.problems


def test_no_scenes_is_the_original_value_error():
    assert problems({"topic": "t", "scenes": []}) == ["scenes is missing or empty: nothing to generate"]
    assert "scenes is missing or empty" in problems({"topic": "t", "scenes": None})[0]
    assert "scenes is missing" in problems({"topic": "t"})[0]


def test_empty_and_whitespace_script():
    p = problems([{"script": "ok", "image_prompt": "x"}, {"script": "  \n", "image_prompt": "x"}, {"script": "", "image_prompt": "x"}])
    assert p == ["scene 2: script is empty", "scene 3: script is empty"]


def test_missing_and_non_string_script():
    p = problems([{"image_prompt": "x"}, {"script": 5, "image_prompt": "x"}])
    assert p == ["scene 1: script is missing", "scene 2: script must be a string, got int"]


def test_prompt_checked_only_when_image_stage_runs():
    data = [{"script": "a"}, {"script": "b", "image_prompt": ""}, {"script": "c", "image_prompt": ["x"]}]
    p = problems(data)
    assert p == ["scene 1: image_prompt is missing", "scene 2: image_prompt is empty", "scene 3: image_prompt must be a string, got list"]
    # audio only: a missing prompt is fine, but a present wrong one is still wrong
    p = problems(data, need_prompt=False)
    assert p == ["scene 2: image_prompt is empty", "scene 3: image_prompt must be a string, got list"]


def test_null_scene_and_wrong_types():
    p = problems([None, "text", {"script": "a", "image_prompt": "b", "audio_path": 3, "motion_frames_path": "x"}])
    assert p[0] == "scene 1: must be an object with script and image_prompt, got null"
    assert p[1] == "scene 2: must be an object with script and image_prompt, got string"
    assert "scene 3: audio_path must be a string, got int" in p
    assert "scene 3: motion_frames_path must be a list of strings" in p


def test_all_problems_reported_at_once():
    p = problems([{"script": ""}, {"script": "x"}, None])
    assert len(p) == 4


def test_wrong_top_level_type():
    assert "expected a list of scenes" in problems(42)[0]
    assert "scenes must be a list, got string" in problems({"scenes": "abc"})[0]


def test_wrong_type_topic():
    assert problems({"topic": 7, "scenes": [{"script": "a", "image_prompt": "b"}]}) == ["topic must be a string, got int"]
    assert "no letters or digits" in problems({"topic": "../..", "scenes": [{"script": "a", "image_prompt": "b"}]})[0]


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"", "file is empty"),
        (b"   \n", "file is empty"),
        (b"{not json", "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a UTF-8 text file"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, expect: str):
    f = tmp_path / "s.json"
    f.write_bytes(content)
    with pytest.raises(SceneValidationError) as ei:
        load_scene_file(f)
    assert expect in str(ei.value) and str(f) in str(ei.value)


def test_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(SceneValidationError, match="file does not exist"):
        load_scene_file(tmp_path / "nope.json")
    with pytest.raises(SceneValidationError, match="is a folder"):
        load_scene_file(tmp_path)


def test_topic_precedence(tmp_path: Path):
    f = tmp_path / "my-file.json"
    f.write_text(json.dumps([{"script": "a", "image_prompt": "b"}]))
    assert load_scene_file(f).topic == "my-file"
    f.write_text(json.dumps({"topic": "From file", "scenes": [{"script": "a", "image_prompt": "b"}]}))
    assert load_scene_file(f).topic == "From file"
    assert load_scene_file(f, topic="Flag").topic == "Flag"


def test_unknown_fields_kept():
    sf = parse_state(
        {"topic": "t", "lang": "ko", "scenes": [{"script": "a", "image_prompt": "b", "mood": {"x": [1, 2]}, "audio_path": ""}]}
    )
    st = sf.state()
    assert st["lang"] == "ko"
    assert st["scenes"][0] == {"script": "a", "image_prompt": "b", "mood": {"x": [1, 2]}, "audio_path": ""}


def test_validate_scenes_builds_models():
    scenes = validate_scenes([{"script": "안녕", "image_prompt": "p", "extra": 1}])
    assert scenes[0].script == "안녕" and scenes[0].to_dict()["extra"] == 1


def test_a_topic_level_reference_image_must_be_text():
    p = problems({"topic": "t", "reference_image": 7, "scenes": [{"script": "a", "image_prompt": "x"}]})
    assert len(p) == 1 and "reference_image" in p[0] and "topic" in p[0]
