"""SIGTERM (a service manager, `timeout`, `docker stop`) stops a run as Ctrl-C does: its ComfyUI jobs are
removed from the server, scenes.json keeps what finished, and the exit code says which signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes.comfy_server import FakeComfyServer


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_the_servers_jobs_and_keeps_finished_work(tmp_path: Path, signum: int):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps({"topic": "stop", "scenes": [{"script": "one", "image_prompt": "a cat"}]}))
    events = tmp_path / "events.jsonl"
    with FakeComfyServer(job_time=30.0) as srv:  # a job that would run far longer than the test
        srv.accept_any_model = True
        p = subprocess.Popen([sys.executable, "-m", "sceneforge.cli", "run", str(scenes), "--out", str(tmp_path / "out"),
                              "--tts", "espeak", "--comfy-url", srv.url, "--workflow", "sdxl", "--events", str(events)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (events.is_file() and '"job_queued"' in events.read_text()):  # the job is on the server
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.stderr else ""
            time.sleep(0.05)
        p.send_signal(signum)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 128 + signum, err.decode()
        assert f"stopped ({signal.Signals(signum).name})" in err.decode()
        assert srv.queue_deletes or srv.interrupts  # the GPU does not keep working for nobody
    state = json.loads((tmp_path / "out" / "stop" / "scenes.json").read_text())
    assert "image_path" not in state["scenes"][0]
