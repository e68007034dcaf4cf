"""The command line: exit codes, scenes.json, clean errors (no tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.backends import FakeTTS
from sceneforge.cli import app

runner = CliRunner()


def scene_file(tmp_path: Path, data, name: str = "scenes.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


GOOD = {"topic": "데모 topic", "scenes": [{"script": "하나", "image_prompt": "a", "x": 1}, {"script": "둘", "image_prompt": "b"}]}


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_run_audio_writes_assets_and_scenes_json(tmp_path: Path):
    f = scene_file(tmp_path, GOOD)
    out = tmp_path / "out"
    r = invoke("run", str(f), "--out", str(out), "--stages", "audio", "--tts", "fake")
    assert r.exit_code == 0, r.output
    root = out / "데모-topic"
    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    assert state["topic"] == "데모 topic"
    assert [s["audio_path"] for s in state["scenes"]] == [str(root / "audio_scene_1.mp3"), str(root / "audio_scene_2.mp3")]
    assert state["scenes"][0]["x"] == 1
    assert (root / "audio_scene_2.mp3").stat().st_size > 0


def test_json_output(tmp_path: Path):
    f = scene_file(tmp_path, GOOD)
    r = invoke("run", str(f), "--out", str(tmp_path / "o"), "--stages", "audio", "--tts", "fake", "--json", "--topic", "T")
    assert r.exit_code == 0
    state = json.loads(r.stdout)
    assert state["topic"] == "T" and len(state["scenes"]) == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topic": "t", "scenes": []}, "scenes is missing or empty"),
        ({"topic": "t", "scenes": [{"script": "", "image_prompt": "x"}]}, "scene 1: script is empty"),
        ({"topic": "t", "scenes": [{"script": "a"}]}, "scene 1: image_prompt is missing"),
        ({"topic": 3, "scenes": [{"script": "a", "image_prompt": "b"}]}, "topic must be a string"),
    ],
)
def test_bad_input_exit_2_no_traceback_nothing_written(tmp_path: Path, data, message: str):
    f = scene_file(tmp_path, data)
    out = tmp_path / "out"
    r = invoke("run", str(f), "--out", str(out), "--tts", "fake")
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output
    assert not out.exists()
    assert sum(FakeTTS.calls.values()) == 0


def test_missing_file_exit_2(tmp_path: Path):
    r = invoke("run", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "does not exist" in r.output


def test_every_file_validated_before_work(tmp_path: Path):
    good = scene_file(tmp_path, GOOD, "a.json")
    bad = scene_file(tmp_path, [{"script": " "}], "b.json")
    out = tmp_path / "out"
    r = invoke("run", str(good), str(bad), "--out", str(out), "--stages", "audio", "--tts", "fake")
    assert r.exit_code == 2 and "b.json: scene 1: script is empty" in r.output
    assert not out.exists()


def test_generation_failure_exit_1_keeps_done_work(tmp_path: Path):
    FakeTTS.fail_times = {"둘": 99}
    f = scene_file(tmp_path, GOOD)
    out = tmp_path / "out"
    cfg = tmp_path / "sf.toml"
    cfg.write_text("[audio_retry]\nmax_attempts = 1\n")  # no real waiting in a CLI test
    r = invoke("run", str(f), "--out", str(out), "--stages", "audio", "--tts", "fake", "--config", str(cfg))
    assert r.exit_code == 1
    assert "scene 2" in r.output and "Traceback" not in r.output
    state = json.loads((out / "데모-topic" / "scenes.json").read_text(encoding="utf-8"))
    assert state["scenes"][0]["audio_path"].endswith("audio_scene_1.mp3")
    assert "audio_path" not in state["scenes"][1]


def test_unknown_backend_is_usage_error(tmp_path: Path):
    f = scene_file(tmp_path, GOOD)
    r = invoke("run", str(f), "--out", str(tmp_path / "o"), "--stages", "audio", "--tts", "nope")
    assert r.exit_code == 2 and "unknown narration backend 'nope'" in r.output


def test_scene_out_of_range(tmp_path: Path):
    f = scene_file(tmp_path, GOOD)
    r = invoke("run", str(f), "--out", str(tmp_path / "o"), "--stages", "audio", "--tts", "fake", "--scene", "5")
    assert r.exit_code == 2 and "--scene 5" in r.output


def test_usage_error_exit_2():
    r = runner.invoke(app, ["run", "--bogus"])
    assert r.exit_code == 2
