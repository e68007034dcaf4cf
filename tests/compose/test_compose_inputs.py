"""Bad input is refused before any work (no ffmpeg started, nothing written); cancelling stops ffmpeg
and leaves no temporary file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import pytest

import sceneforge.compose.audio as audio
import sceneforge.compose.process as process
import sceneforge.compose.render as render
from sceneforge.compose import ComposeOptions, compose_topic
from sceneforge.errors import ConfigError, InputFileMissingError, RenderCancelledError

SMALL = (360, 640)


@pytest.fixture
def no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any render work starts (the mix, the loudness measurement, the picture pass)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("render work was started for bad input")

    for module in (render, audio):
        monkeypatch.setattr(module, "run_ffmpeg", refuse)


def _edit(topic: Path, n: int, **fields: object) -> None:
    data = json.loads((topic / "scenes.json").read_text(encoding="utf-8"))
    data["scenes"][n - 1].update(fields)
    (topic / "scenes.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_missing_assets_name_every_scene_and_its_stage(topic: Path, no_render: None) -> None:
    (topic / "audio_scene_2.mp3").unlink()
    (topic / "image_scene_3.png").unlink()
    (topic / "motion_scene_2" / "frame_0003.png").unlink()
    _edit(topic, 1, audio_path="")
    with pytest.raises(InputFileMissingError) as err:
        compose_topic(topic, ComposeOptions(size=SMALL))
    problems = err.value.problems
    assert len(problems) == 3, problems  # scene 2 stops at its first missing file
    assert problems[0].startswith("scene 1:") and "audio_path" in problems[0] and "(audio stage)" in problems[0]
    assert problems[1].startswith("scene 2:") and "audio_scene_2.mp3" in problems[1] and "(audio stage)" in problems[1]
    assert problems[2].startswith("scene 3:") and "image_scene_3.png" in problems[2] and "(image stage)" in problems[2]
    assert not (topic / "final.mp4").exists() and not (topic / "cover.jpg").exists()


def test_missing_motion_frame_names_the_motion_stage(topic: Path, no_render: None) -> None:
    (topic / "motion_scene_2" / "frame_0003.png").unlink()
    with pytest.raises(InputFileMissingError, match=r"scene 2: motion_frames_path .*frame_0003.png.*\(motion stage\)"):
        compose_topic(topic, ComposeOptions(size=SMALL))


def test_unreadable_image_names_the_scene(topic: Path, no_render: None) -> None:
    (topic / "image_scene_1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputFileMissingError, match=r"scene 1: image_path .*image_scene_1.png is not a readable image"):
        compose_topic(topic, ComposeOptions(size=SMALL))


def test_an_image_with_a_bad_checksum_joins_the_list(topic: Path, no_render: None) -> None:
    """A PNG whose pixel data fails its CRC (Pillow raises SyntaxError, not OSError) is one more problem."""
    data = bytearray((topic / "image_scene_1.png").read_bytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF  # a byte of the pixel data, its chunk's CRC left as it was
    (topic / "image_scene_1.png").write_bytes(bytes(data))
    (topic / "audio_scene_2.mp3").unlink()
    with pytest.raises(InputFileMissingError) as err:
        compose_topic(topic, ComposeOptions(size=SMALL))
    problems = err.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("scene 1: image_path") and "is not a readable image" in problems[0]
    assert "(image stage)" in problems[0] and problems[1].startswith("scene 2:")


def test_music_missing_or_not_audio_names_the_file(topic: Path, no_render: None, tmp_path: Path) -> None:
    gone = tmp_path / "gone.mp3"
    with pytest.raises(InputFileMissingError, match=f"music file {gone} does not exist"):
        compose_topic(topic, ComposeOptions(size=SMALL, music=gone))
    junk = tmp_path / "notes.mp3"
    junk.write_text("not audio at all", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"music file {junk} is not readable audio"):
        compose_topic(topic, ComposeOptions(size=SMALL, music=junk))


@pytest.mark.parametrize("bad", [
    {"transition": "spin"}, {"captions": "karaoke"}, {"size": (361, 640)}, {"pad": -1.0},
    {"pad": float("nan")}, {"transition_duration": 5.0}, {"fps": 29}, {"music_volume": 2.0}, {"fit": "stretch"},
])
def test_bad_options_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ComposeOptions(**bad)  # type: ignore[arg-type]


def _children() -> set[int]:
    """Processes whose parent is this one (from /proc)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
    return found


def _cancel_during_encode(topic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop) -> list[int]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    seen: list[int] = []

    def on_progress(done: float, total: float) -> None:
        seen.extend(_children())
        stop()

    with pytest.raises((RenderCancelledError, KeyboardInterrupt)):
        compose_topic(topic, ComposeOptions(size=SMALL), on_progress=on_progress)
    assert seen, "the picture pass had an ffmpeg running"
    assert not set(seen) & _children(), "ffmpeg was ended"
    assert list((tmp_path / "tmp").iterdir()) == [], "the work folder was removed"
    assert not any(p.name.startswith(("final", "cover")) for p in topic.iterdir())
    return seen


def test_cancel_ends_ffmpeg_and_leaves_nothing(topic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cancel = threading.Event()
    monkeypatch.setattr(process, "POLL", 0.01)

    def on_progress(done: float, total: float) -> None:
        cancel.set()

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    running: list[int] = []
    with pytest.raises(RenderCancelledError, match="cancelled"):
        compose_topic(topic, ComposeOptions(size=SMALL), cancel=cancel,
                      on_progress=lambda d, t: (running.extend(_children()), on_progress(d, t)))
    assert running and not set(running) & _children()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not any(p.name.startswith(("final", "cover")) for p in topic.iterdir())


def test_an_interrupt_in_the_callback_also_ends_ffmpeg(topic: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    _cancel_during_encode(topic, tmp_path, monkeypatch, interrupt)
