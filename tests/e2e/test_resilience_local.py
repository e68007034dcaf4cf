"""Local faults: a second run on the same topic, a full disk, a read-only folder."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.backends import FakeTTS
from sceneforge.cli import app
from sceneforge.layout import TopicLayout
from sceneforge.lock import topic_lock

runner = CliRunner()
STATE = {"topic": "t", "scenes": [{"script": "one", "image_prompt": "a"}, {"script": "two", "image_prompt": "b"}]}


def scene_file(tmp_path: Path) -> Path:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(STATE))
    return f


def run(tmp_path: Path, *extra: str):
    return runner.invoke(app, ["run", str(scene_file(tmp_path)), "--out", str(tmp_path / "out"),
                               "--tts", "fake", "--stages", "audio", *extra], catch_exceptions=False)


def test_second_run_on_same_topic_refuses_clearly(tmp_path: Path):
    lay = TopicLayout.for_topic(tmp_path / "out", "t")
    with topic_lock(lay):
        r = run(tmp_path)
        assert r.exit_code == 1
        assert "another sceneforge run is writing" in r.output and "--wait-lock" in r.output
        assert sum(FakeTTS.calls.values()) == 0
    r = run(tmp_path)  # once the first run is done, it works
    assert r.exit_code == 0


def _failing_write(monkeypatch: pytest.MonkeyPatch, err: int, on: str) -> None:
    real = Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:
        if on in self.name:
            raise OSError(err, "simulated")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


@pytest.mark.parametrize(("err", "words"), [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "not writable")])
def test_disk_full_or_read_only_is_reported_and_keeps_done_work(tmp_path: Path, monkeypatch, err: int, words: str):
    assert run(tmp_path).exit_code == 0
    state_before = (tmp_path / "out" / "t" / "scenes.json").read_text()
    # scene 2 changes; writing its new audio fails
    STATE2 = json.loads(json.dumps(STATE))
    STATE2["scenes"][1]["script"] = "two, edited"
    (tmp_path / "s.json").write_text(json.dumps(STATE2))
    _failing_write(monkeypatch, err, "audio_scene_2.mp3")
    r = runner.invoke(app, ["run", str(tmp_path / "s.json"), "--out", str(tmp_path / "out"), "--tts", "fake",
                            "--stages", "audio"], catch_exceptions=False)
    assert r.exit_code == 1
    assert words in r.output and "audio_scene_2.mp3" in r.output and "Traceback" not in r.output
    root = tmp_path / "out" / "t"
    # nothing already done is lost: scene 1 is intact and still recorded
    assert (root / "audio_scene_1.mp3").stat().st_size > 0
    state = json.loads((root / "scenes.json").read_text())
    assert state["scenes"][0]["audio_path"].endswith("audio_scene_1.mp3")
    assert not list(root.glob(".*.part"))
    assert state_before  # the earlier state was valid JSON too


def test_atomic_path_only_wraps_storage_errors(tmp_path: Path):
    from sceneforge.errors import OutputWriteError
    from sceneforge.fsutil import atomic_path

    with pytest.raises(ConnectionRefusedError):
        with atomic_path(tmp_path / "a.bin"):
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    with pytest.raises(TimeoutError):
        with atomic_path(tmp_path / "a.bin"):
            raise TimeoutError()
    with pytest.raises(OutputWriteError, match="disk is full"):
        with atomic_path(tmp_path / "a.bin"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OutputWriteError, match="empty file"):
        with atomic_path(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"")
    assert list(tmp_path.iterdir()) == []
