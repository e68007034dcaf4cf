"""What `sceneforge run` refuses before writing anything: a folder that holds another topic, an --out that is a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sceneforge.cli import app

SCENES = [{"script": "hello", "image_prompt": "a cat"}]


def write(path: Path, topic: str) -> Path:
    path.write_text(json.dumps({"topic": topic, "scenes": SCENES}))
    return path


def test_two_topics_with_one_folder_name_are_refused(tmp_path: Path):
    """'C++ tips' and 'C tips' both become c-tips: the second may not replace the first's files."""
    out = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(app, ["run", str(write(tmp_path / "a.json", "C++ tips")), "--offline", "--out", str(out)])
    assert first.exit_code == 0, first.output
    folder = out / "c-tips"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}
    second = runner.invoke(app, ["run", str(write(tmp_path / "b.json", "C tips")), "--offline", "--out", str(out)])
    assert second.exit_code == 2
    text = " ".join(second.output.split())
    assert "'C tips'" in text and "'C++ tips'" in text and "--topic" in text
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()} == before
    assert json.loads((folder / "scenes.json").read_text())["topic"] == "C++ tips"
    # --topic gives the second one a folder of its own; the same topic again is fine.
    renamed = runner.invoke(app, ["run", str(tmp_path / "b.json"), "--topic", "C tips 2", "--offline", "--out", str(out)])
    assert renamed.exit_code == 0 and (out / "c-tips-2" / "scenes.json").is_file()
    again = runner.invoke(app, ["run", str(tmp_path / "a.json"), "--offline", "--out", str(out)])
    assert again.exit_code == 0


def test_out_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path):
    not_a_folder = tmp_path / "out.txt"
    not_a_folder.write_text("x")
    r = CliRunner().invoke(app, ["run", str(write(tmp_path / "a.json", "t")), "--offline", "--out", str(not_a_folder)])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is a file" in lines[0] and "--out" in lines[0]
    assert not_a_folder.read_text() == "x"


def test_a_seed_a_server_would_refuse_is_refused_before_anything_is_written(tmp_path: Path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(write(tmp_path / "a.json", "t")), "--offline", "--out", str(out),
                                 "--seed", str(2**64)])
    assert r.exit_code == 2 and "seed" in r.output
    assert not out.exists()


async def test_the_folder_is_checked_again_under_the_lock(tmp_path: Path):
    """A run that planned while the folder was free, then waited, is still refused (and so is a killed run's)."""
    import pytest

    from sceneforge.config import Settings
    from sceneforge.errors import TopicConflictError
    from sceneforge.pipeline import Engine, aplan_run

    s = Settings(out_dir=tmp_path, offline=True, stages=("audio",))
    c = await aplan_run([{"topic": "C tips", "scenes": SCENES}], s)
    cpp = await aplan_run([{"topic": "C++ tips", "scenes": SCENES}], s)  # both planned: the folder was free
    async with Engine(s) as engine:
        await engine.run_topic(cpp.topics[0])
        with pytest.raises(TopicConflictError, match="'C tips'.*'C\\+\\+ tips'"):
            await engine.run_topic(c.topics[0])
    assert json.loads((tmp_path / "c-tips" / "scenes.json").read_text())["topic"] == "C++ tips"
    # The marker is written before any asset: a run killed before scenes.json still owns its folder.
    (tmp_path / "c-tips" / "scenes.json").unlink()
    with pytest.raises(TopicConflictError):
        await aplan_run([{"topic": "C tips", "scenes": SCENES}], s)


def test_motion_without_images_names_every_scene_and_writes_nothing(tmp_path: Path):
    f = write(tmp_path / "m.json", "motion only")
    events = tmp_path / "events.jsonl"
    r = CliRunner().invoke(app, ["run", str(f), "--offline", "--stages", "motion", "--out", str(tmp_path / "out"),
                                 "--events", str(events)])
    assert r.exit_code == 2  # bad input, before any work (a FileNotFoundError, as the original system raised)
    assert "scene 1: image_path is not set; run the image stage first" in r.output
    assert not (tmp_path / "out").exists() and not events.exists()


def test_motion_inputs_missing_are_one_problem_per_scene_and_a_file_not_found_error(tmp_path: Path):
    from sceneforge.config import Settings
    from sceneforge.errors import InputFileMissingError
    from sceneforge.pipeline import plan_run

    f = tmp_path / "two.json"
    f.write_text(json.dumps([{"script": "a", "image_prompt": "x"}, {"script": "b", "image_prompt": "y"}]))
    r = CliRunner().invoke(app, ["run", str(f), "--offline", "--stages", "motion", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "2 problems in the input" in r.output
    text = " ".join(r.output.split())
    assert "scene 1: image_path is not set" in text and "scene 2: image_path is not set" in text
    settings = Settings(out_dir=tmp_path / "o", offline=True, stages=("motion",), motion_enabled=True)
    with pytest.raises(FileNotFoundError) as caught:  # what the original system raised
        plan_run([str(f)], settings)
    assert isinstance(caught.value, InputFileMissingError) and len(caught.value.problems) == 2


def test_out_below_a_file_is_refused_before_anything_is_made(tmp_path: Path):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    r = CliRunner().invoke(app, ["run", str(write(tmp_path / "a.json", "t")), "--offline",
                                 "--out", str(blocker / "deeper" / "out")])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "cannot be made" in text and f"{blocker} is a file" in text
    assert blocker.read_text() == "x"


def test_contradicting_flags_are_usage_errors(tmp_path: Path):
    scenes = write(tmp_path / "a.json", "t")
    before = scenes.read_text()
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(scenes), "--offline", "--events", str(scenes), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "is one of the scene files" in " ".join(r.output.split())
    assert scenes.read_text() == before  # the input was not truncated by opening the events file
    r = runner.invoke(app, ["run", str(scenes), "--offline", "--tts", "edge", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "drop --tts edge or --offline" in " ".join(r.output.split())
    r = runner.invoke(app, ["run", str(scenes), "--offline", "--tts", "espeak", "--stages", "audio",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o" / "t" / "scenes.json").read_text())["scenes"][0]["audio_path"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where nothing can be made")
def test_a_topic_folder_that_cannot_be_made_is_a_clear_usage_error(tmp_path: Path):
    r = CliRunner().invoke(app, ["run", str(write(tmp_path / "a.json", "t")), "--offline", "--out", "/proc/sf-nope"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "the topic folder /proc/sf-nope/t cannot be made" in text and "Errno" not in text


def test_an_offline_draft_still_checks_the_workflows_named(tmp_path: Path):
    f = tmp_path / "wf.json"
    f.write_text(json.dumps([{"script": "a", "image_prompt": "x", "workflow": "nope"},
                             {"script": "b", "image_prompt": "y", "workflow": "wan22-5b-ti2v"}]))
    r = CliRunner().invoke(app, ["run", str(f), "--offline", "--out", str(tmp_path / "o")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "scene 1: workflow: no bundled workflow or file named 'nope'" in text
    assert "scene 2: workflow: bundled workflow 'wan22-5b-ti2v' is a motion workflow, not image" in text
    r = CliRunner().invoke(app, ["run", str(write(tmp_path / "a.json", "t")), "--offline", "--workflow", "nope",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--workflow: no bundled workflow or file named 'nope'" in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()
