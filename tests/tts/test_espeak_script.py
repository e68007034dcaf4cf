"""espeak from a plain script without a main guard, and its workers' failure modes (issue #11, item 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mutagen.mp3 import MP3

from sceneforge.errors import JobTimeoutError, TransientError
from sceneforge.retry import is_retryable
from sceneforge.tts.base import SpeechRequest
from sceneforge.tts.espeak import EspeakBackend, EspeakOptions

SCRIPT = """\
import sceneforge

with open("ran.txt", "a") as fh:  # one line per execution of this body
    fh.write("ran\\n")

state = sceneforge.generate_assets(
    {"topic": "demo", "scenes": [{"script": "Hello there.", "image_prompt": "a sunrise"},
                                 {"script": "A second scene, spoken at once.", "image_prompt": "a sunset"}]},
    sceneforge.load_settings({"offline": True, "out_dir": OUT, "tts_workers": 2}),
)
for scene in state["scenes"]:
    print(scene["audio_path"])
"""


def test_plain_script_without_main_guard_runs_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "make_assets.py"
    script.write_text(SCRIPT.replace("OUT", repr(str(out))), encoding="utf-8")
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=120, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "ran.txt").read_text() == "ran\n"  # not once more per worker
    paths = p.stdout.split()
    assert paths == [str(out / "demo" / "audio_scene_1.mp3"), str(out / "demo" / "audio_scene_2.mp3")]
    for path in paths:
        info = MP3(path).info
        assert info.length > 0.5 and info.sample_rate == 24_000
    assert "OutputLockedError" not in p.stderr and "Traceback" not in p.stderr


async def test_killed_worker_is_a_transient_error_and_is_replaced(tmp_path: Path) -> None:
    b = EspeakBackend(EspeakOptions(workers=1))
    try:
        await b.synthesize(SpeechRequest(1, "Warm up.", tmp_path / "a.mp3"))
        assert b._pool is not None
        [pid] = b._pool.pids
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TransientError, match="an espeak worker process died: it was killed by signal 9") as info:
            await b.synthesize(SpeechRequest(1, "Hello.", tmp_path / "b.mp3"))
        assert is_retryable(info.value)
        assert not (tmp_path / "b.mp3").exists()
        assert (await b.synthesize(SpeechRequest(1, "Hello again.", tmp_path / "c.mp3"))).duration > 0.3
        assert b._pool.pids != [pid]
    finally:
        await b.aclose()


async def test_timeout_is_a_job_timeout(tmp_path: Path) -> None:
    b = EspeakBackend(EspeakOptions(workers=1, timeout=0.001))  # shorter than starting a process
    try:
        with pytest.raises(JobTimeoutError, match="espeak did not finish within 0.001 s"):
            await b.synthesize(SpeechRequest(1, "Hello.", tmp_path / "x.mp3"))
    finally:
        await b.aclose()
    assert not (tmp_path / "x.mp3").exists()


async def test_workers_ignore_ctrl_c_and_end_with_the_backend(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the parent decides, the worker keeps its job."""
    b = EspeakBackend(EspeakOptions(workers=1))
    await b.synthesize(SpeechRequest(1, "Warm up.", tmp_path / "a.mp3"))
    assert b._pool is not None
    [pid] = b._pool.pids
    os.kill(pid, signal.SIGINT)
    assert (await b.synthesize(SpeechRequest(1, "Still here.", tmp_path / "b.mp3"))).duration > 0.3
    assert b._pool.pids == [pid]
    await b.aclose()
    assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
