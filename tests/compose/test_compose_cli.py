"""``sceneforge compose`` and ``run --compose`` through the real command line: exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from compose_helpers import stream_facts
from typer.testing import CliRunner

import sceneforge.compose.render as render
from sceneforge.cli import app
from sceneforge.layout import slugify

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_compose_writes_final_and_cover(topic: Path, music: Path) -> None:
    r = invoke("compose", topic, "--size", "720x1280", "--music", music, "--captions", "lines", "--title", "제목")
    assert r.exit_code == 0, r.output
    assert f"final: {topic / 'final.mp4'}" in r.output and f"cover: {topic / 'cover.jpg'}" in r.output
    facts = stream_facts(topic / "final.mp4")
    assert facts["size"] == (720, 1280) and facts["title"] == "제목"


@pytest.mark.parametrize("args, message", [
    (["--size", "640x480"], "--size 640x480: expected one of 1080x1920, 720x1280, 1080x1080, 1920x1080"),
    (["--transition", "spin"], "transition 'spin': expected one of none, fade"),
    (["--captions", "all"], "captions 'all': expected one of none, lines, words"),
    (["--pad", "-1"], "pad must be between 0 and 5"),
])
def test_bad_options_exit_2(topic: Path, args: list[str], message: str) -> None:
    r = invoke("compose", topic, *args)
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output


def test_bad_input_exit_2_naming_what_is_wrong(topic: Path, tmp_path: Path) -> None:
    r = invoke("compose", tmp_path / "nowhere")
    assert r.exit_code == 2 and "no scenes.json here" in r.output
    r = invoke("compose", topic, "--music", tmp_path / "missing.mp3")
    assert r.exit_code == 2 and "music file" in r.output and "missing.mp3" in r.output
    (topic / "image_scene_2.png").unlink()
    r = invoke("compose", topic)
    assert r.exit_code == 2 and "scene 2: image_path" in r.output and "(image stage)" in r.output
    assert not (topic / "final.mp4").exists()


def test_sigterm_stops_the_render_with_128_plus_signal(topic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = render._render

    def signalled(*args: object, **kwargs: object):
        os.kill(os.getpid(), signal.SIGTERM)  # the CLI's handler sets the cancel event: ffmpeg is ended
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "_render", signalled)
    before = signal.getsignal(signal.SIGTERM)
    r = invoke("compose", topic, "--size", "720x1280")
    assert r.exit_code == 128 + signal.SIGTERM and "compose stopped" in r.output
    assert not any(p.name.startswith(("final", "cover")) for p in topic.iterdir())
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the CLI's only while it renders


def test_run_with_compose(tmp_path: Path) -> None:
    scenes = {"topic": "합성 테스트", "scenes": [{"script": "짧은 장면.", "image_prompt": "a red fox"},
                                               {"script": "끝.", "image_prompt": "a blue sea"}]}
    f = tmp_path / "in.json"
    f.write_text(json.dumps(scenes, ensure_ascii=False), encoding="utf-8")
    r = invoke("run", f, "--offline", "--out", tmp_path / "out", "--compose", "--json")
    assert r.exit_code == 0, r.output
    root = tmp_path / "out" / slugify("합성 테스트")
    facts = stream_facts(root / "final.mp4")
    assert facts["size"] == (1080, 1920) and facts["title"] == "합성 테스트"
    assert (root / "cover.jpg").is_file()
