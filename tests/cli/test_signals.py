"""SIGTERM (a service manager, `timeout`, `docker stop`) stops a run as Ctrl-C does: on the ComfyUI server the
running job is interrupted and the queued one deleted, scenes.json keeps what finished, and the exit code says
which signal. A second signal while stopping (Ctrl-C pressed twice, a wrapper forwarding the signal again)
must not cut that short."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli.run import _until_signalled


class _SlowToDelete(FakeComfyServer):
    """Holds every ``POST /queue`` until 0.2 s after the first one came, then answers them together, calling
    ``on_delete`` at the first: a stop is then surely under way (the command waiting for the server) when the
    test sends a second signal, and the queued job is deleted before the running one's interrupt can arrive
    (with one hold per request, the running job's delete could be answered first, its interrupt let the
    queued job start, and that one be interrupted instead of deleted)."""

    on_delete: Callable[[], None] | None = None
    _release: asyncio.Event | None = None

    async def _post_queue(self, request: web.Request) -> web.Response:
        if self.on_delete is not None:
            if self._release is None:
                self._release = asyncio.Event()
                asyncio.get_running_loop().call_later(0.2, self._release.set)
                self.on_delete()
            await self._release.wait()
        return await super()._post_queue(request)


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _job_of(srv: FakeComfyServer, prompt: str) -> dict[str, Any]:
    return next(j for j in srv.jobs if prompt in json.dumps(j["graph"]))


@pytest.mark.parametrize(("signum", "times"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGINT, 2)])
def test_a_signal_interrupts_the_running_job_deletes_the_queued_one_and_keeps_finished_work(
        tmp_path: Path, signum: int, times: int):
    scenes = tmp_path / "s.json"
    prompts = ["a quick cat", "a slow dog", "a queued bird"]
    scenes.write_text(json.dumps({"topic": "stop", "scenes": [{"script": f"line {n}", "image_prompt": p}
                                                              for n, p in enumerate(prompts, 1)]}))
    events = tmp_path / "events.jsonl"
    # Scene 1 finishes at once; scene 2 would compute far longer than the test; scene 3 waits behind it
    # (one server holds two jobs: one running, one queued).
    with _SlowToDelete(job_time=lambda g: 0.0 if "quick" in json.dumps(g) else 60.0) as srv:
        srv.accept_any_model = True
        p = subprocess.Popen([sys.executable, "-m", "sceneforge.cli", "run", str(scenes), "--out", str(tmp_path / "out"),
                              "--tts", "espeak", "--comfy-url", srv.url, "--workflow", "sdxl", "--events", str(events)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60

        def ready() -> bool:
            seen = _events(events)
            image_done = any(e["kind"] == "scene_done" and e.get("stage") == "image" and e.get("scene") == 1 for e in seen)
            queued = {e.get("scene") for e in seen if e["kind"] == "job_queued"}
            states = {j["status"] for j in srv.jobs if "quick" not in json.dumps(j["graph"])}
            return image_done and queued >= {1, 2, 3} and states == {"running", "pending"}

        while not ready():
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.stderr else ""
            time.sleep(0.05)
        srv.on_delete = (lambda: p.send_signal(signum)) if times == 2 else (lambda: None)  # the 2nd while stopping
        p.send_signal(signum)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 128 + signum, err.decode()
        assert f"stopped ({signal.Signals(signum).name})" in err.decode()
        running, queued = _job_of(srv, "a slow dog"), _job_of(srv, "a queued bird")
        # The GPU does not keep working for nobody: the running job is interrupted before the command exits
        # (the fake records /interrupt as it answers it), the queued one never starts.
        assert {"prompt_id": running["prompt_id"]} in srv.interrupts
        assert queued["prompt_id"] in srv.queue_deletes
        while running["status"] == "running" and time.monotonic() < deadline:  # the fake ends it at its next step
            time.sleep(0.01)
        assert (running["status"], queued["status"]) == ("interrupted", "deleted")
        assert _job_of(srv, "a quick cat")["status"] == "success"
    state = json.loads((tmp_path / "out" / "stop" / "scenes.json").read_text())
    assert "image_path" in state["scenes"][0] and (tmp_path / "out" / "stop" / state["scenes"][0]["image_path"]).is_file()
    assert ["image_path" in s for s in state["scenes"][1:]] == [False, False]


async def test_only_the_first_signal_cancels_and_the_stop_is_bounded_by_its_deadline():
    """A second signal does not cancel again (the cancels on the servers run on); after ``deadline`` the run
    is cancelled once more, however long its clean-up would take."""
    waits: list[float] = []
    cancels: list[int] = []
    release = asyncio.Event()
    stopped: list[int] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await release.wait()  # the deadline passes when the test says so

    async def work() -> str:
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels.append(len(stopped))
                if len(cancels) == 2:
                    raise
                # a clean-up that would take for ever (a server that never answers): keep going

    task = asyncio.ensure_future(_until_signalled(work(), stopped, deadline=7.5, sleep=sleep))
    await asyncio.sleep(0)
    for n, signum in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGINT), 1):
        os.kill(os.getpid(), signum)  # handled by the loop's handler that _until_signalled installed
        for _ in range(1000):
            if len(stopped) == n:
                break
            await asyncio.sleep(0.001)
        for _ in range(3):
            await asyncio.sleep(0)
    assert stopped == [signal.SIGTERM, signal.SIGINT, signal.SIGINT] and cancels == [1]
    assert waits == [7.5]
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancels == [1, 3]
