"""``sceneforge preview`` and ``run --preview`` through the real CLI, on a real offline run.

The topic is made once per module with the offline backends (espeak, storyboard,
kenburns motion of 9 frames); the outputs are checked with PyAV and Pillow.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import av
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import sceneforge.cli.common as cli
from sceneforge.cli import app
from sceneforge.layout import slugify
from sceneforge.preview import sheet_geometry

runner = CliRunner()

TOPIC = "미리보기 테스트"
SCENES = {
    "topic": TOPIC,
    "scenes": [
        {"script": "안녕하세요. 첫 번째 장면입니다.", "image_prompt": "a red fox in the snow"},
        {"script": "두 번째 장면에서는 바다를 봅니다.", "image_prompt": "blue ocean waves at sunset"},
        {"script": "마지막 장면, 감사합니다!", "image_prompt": "a green forest path"},
    ],
}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_run(tmp: Path, *extra: str) -> Path:
    """Run the offline pipeline with motion on the 3-scene file; return the topic folder."""
    f = tmp / "scenes.in.json"
    f.write_text(json.dumps(SCENES, ensure_ascii=False), encoding="utf-8")
    out = tmp / "out"
    r = invoke("run", f, "--offline", "--motion", "--motion-length", "9", "--out", out, *extra)
    assert r.exit_code == 0, r.output
    return out / slugify(TOPIC)


@pytest.fixture(scope="module")
def topic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline run, shared by the tests that only read it."""
    return make_run(tmp_path_factory.mktemp("preview-cli"))


def narration_seconds(root: Path) -> float:
    """What the preview's timeline is built from: each scene's ``audio_duration`` in scenes.json.

    espeak records the length of the PCM it encoded. mutagen (and PyAV) report
    each MP3 about 0.06 s longer, because LAME adds encoder delay and pads the
    last frame; the preview cuts or pads every narration to ``audio_duration``,
    so the sum of the mutagen lengths would be ~0.06 s per scene too long
    (0.18 s here, about the whole tolerance).
    """
    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    return sum(float(s["audio_duration"]) for s in state["scenes"])


def test_preview_writes_video_and_contact_sheet(topic: Path) -> None:
    r = invoke("preview", topic)
    assert r.exit_code == 0, r.output
    expected = narration_seconds(topic)
    assert 3 < expected < 20
    video = topic / "preview.mp4"
    assert f"preview: {video} ({expected:.1f} s)" in r.output
    assert f"contact sheet: {topic / 'contact_sheet.png'}" in r.output
    # stderr is not a terminal under CliRunner: no progress bar in the output.
    assert "━" not in r.output and "frames" not in r.output
    assert "Traceback" not in r.output

    with av.open(str(video)) as c:
        assert abs(c.duration / 1_000_000 - expected) < 0.2
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 720, 1280)
        assert [a.codec_context.name for a in c.streams.audio] == ["aac"]
    assert not list(topic.glob(".*.part"))

    with Image.open(topic / "contact_sheet.png") as sheet:
        assert sheet.size == sheet_geometry(3).size


def test_run_with_preview_writes_both_and_shows_progress_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend stderr is a terminal: the encode's progress bar is drawn there.
    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=120, highlight=False, soft_wrap=True))
    root = make_run(tmp_path, "--preview")
    assert (root / "preview.mp4").stat().st_size > 0
    with Image.open(root / "contact_sheet.png") as sheet:
        assert sheet.size == sheet_geometry(3).size
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # drop colours and cursor moves
    expected = narration_seconds(root)
    assert f"preview: {root / 'preview.mp4'} ({expected:.1f} s)" in text
    frames = round(expected * 24)  # the preview's 24 fps timeline
    assert re.search(rf"encoding {re.escape(root.name)}/preview\.mp4 .*\b{frames}/{frames} frames", text)


def test_missing_image_exits_2_naming_the_scene(tmp_path: Path) -> None:
    root = make_run(tmp_path)
    (root / "image_scene_2.png").unlink()
    r = invoke("preview", root)
    assert r.exit_code == 2, r.output
    assert "scene 2" in r.output and "image_scene_2.png" in r.output
    assert "run `sceneforge run` first" in r.output
    assert "Traceback" not in r.output
    assert not (root / "preview.mp4").exists() and not (root / "contact_sheet.png").exists()


@pytest.mark.parametrize("sub", ["empty", "missing"])
def test_folder_without_scenes_json_exits_2(tmp_path: Path, sub: str) -> None:
    folder = tmp_path / sub
    if sub == "empty":
        folder.mkdir()
    r = invoke("preview", folder)
    assert r.exit_code == 2, r.output
    assert "no scenes.json" in r.output and "sceneforge run" in r.output
    assert "Traceback" not in r.output


def test_run_without_the_images_its_motion_needs_is_bad_input(tmp_path: Path) -> None:
    """A run whose motion has no image is refused like preview's missing assets: exit 2, each scene named."""
    f = tmp_path / "s.json"
    f.write_text(json.dumps(SCENES, ensure_ascii=False), encoding="utf-8")
    r = invoke("run", f, "--offline", "--motion", "--stages", "motion", "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert "scene 1: image_path is not set" in r.output
