"""A catalogue of malformed scene files: each exits 2, names the problem, and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.backends import FakeTTS
from sceneforge.cli import app

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED: dict[str, str] = json.loads((DATA / "bad_expected.json").read_text(encoding="utf-8"))
runner = CliRunner()


def test_catalogue_is_big_enough():
    assert len(EXPECTED) >= 20
    assert sorted(EXPECTED) == sorted(p.name for p in (DATA / "bad").iterdir())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file(tmp_path: Path, name: str):
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(DATA / "bad" / name), "--out", str(out), "--tts", "fake"], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert EXPECTED[name] in r.output
    assert name in r.output  # the file is named
    assert "Traceback" not in r.output
    assert not out.exists()
    assert sum(FakeTTS.calls.values()) == 0


def test_path_that_is_a_folder(tmp_path: Path):
    r = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "is a folder" in r.output and not (tmp_path / "o").exists()


def test_file_that_does_not_exist(tmp_path: Path):
    r = runner.invoke(app, ["run", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "does not exist" in r.output and not (tmp_path / "o").exists()


def test_real_process_prints_no_traceback(tmp_path: Path):
    """The installed entry point, in a real process with no stdin."""
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "sceneforge.cli", "run", str(DATA / "bad" / "12_empty_script.json"), "--out", str(out)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )
    assert p.returncode == 2
    assert "scene 1: script is empty" in p.stderr and "Traceback" not in p.stderr + p.stdout
    assert not out.exists()


def test_input_paths_are_not_trusted(tmp_path: Path):
    """audio_path/image_path from the input are neither taken as finished nor written to."""
    outside = tmp_path / "outside.mp3"
    outside.write_bytes(b"not mine")
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"topic": "t", "scenes": [{"script": "hello", "image_prompt": "p",
                                                       "audio_path": str(outside), "image_path": "/etc/passwd"}]}))
    r = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out"), "--tts", "fake", "--stages", "audio"],
                      catch_exceptions=False)
    assert r.exit_code == 0
    assert FakeTTS.calls["hello"] == 1  # generated although the input claimed a file
    assert outside.read_bytes() == b"not mine"
    state = json.loads((tmp_path / "out" / "t" / "scenes.json").read_text())
    assert state["scenes"][0]["audio_path"] == str(tmp_path / "out" / "t" / "audio_scene_1.mp3")


def test_stale_asset_fields_in_the_input_are_dropped(tmp_path: Path):
    """Feeding a run's own scenes.json back, with an edited script: the old narration is not kept."""
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"topic": "t", "scenes": [{"script": "first words", "image_prompt": "p1"},
                                                      {"script": "second words", "image_prompt": "p2"}]}))
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(f), "--out", str(out), "--offline"], catch_exceptions=False).exit_code == 0
    state = json.loads((out / "t" / "scenes.json").read_text())
    state["scenes"][0]["script"] = "edited words"
    f2 = tmp_path / "again.json"
    f2.write_text(json.dumps(state))
    r = runner.invoke(app, ["run", str(f2), "--out", str(out), "--offline", "--stages", "image", "--json"],
                      catch_exceptions=False)
    assert r.exit_code == 0
    scenes = json.loads(r.stdout)["scenes"]
    assert not {"audio_path", "audio_duration", "subtitle_path"} & set(scenes[0])  # stale: the script changed
    assert scenes[1]["audio_path"].endswith("audio_scene_2.mp3")  # still valid: restored from the cache
    assert scenes[0]["image_path"].endswith("image_scene_1.png")
