"""Serverless endpoints in real runs: a run killed with SIGKILL re-attaches to its RunPod jobs by id on the
next run (no second submission) and submits again only the jobs the endpoint no longer has."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_secrets import InThread

from fakes.runpod import FakeRunPod

pytestmark = pytest.mark.timeout(120)

KEY = "rpa-test-key"


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_run_re_attaches_to_its_endpoint_jobs_and_resubmits_only_lost_ones(tmp_path: Path):
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps({"topic": "rented", "scenes": [
        {"script": f"Line {n}.", "image_prompt": f"a harbour {n}"} for n in (1, 2, 3)]}))
    out, logs = tmp_path / "out", tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_")}
    env["RUNPOD_API_KEY"] = KEY
    thread = InThread(FakeRunPod(api_key=KEY, workers=3))
    with thread as fake:
        thread.loop.call_soon_threadsafe(fake.hold)
        cmd = [sys.executable, "-m", "sceneforge.cli", "run", str(f), "--out", str(out), "--tts", "espeak",
               "--workflow", "sdxl", "--width", "64", "--height", "64", "--comfy-url", fake.member_url]
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=open(logs / "1.out", "wb"),
                             stderr=open(logs / "1.err", "wb"), start_new_session=True)
        journal = out / "rented" / ".sceneforge" / "jobs"
        try:
            wait_for(lambda: len(fake.jobs) == 3 and len(list(journal.glob("image_scene_*.json"))) == 3,
                     "three journaled endpoint jobs")
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        assert fake.cancels == []  # killed: nothing was cancelled, the jobs stay on the endpoint
        thread.loop.call_soon_threadsafe(fake.release)
        wait_for(lambda: all(j.status == "COMPLETED" for j in fake.jobs.values()), "the jobs to finish")
        lost = sorted(fake.jobs)[0]
        del fake.jobs[lost]  # as after RunPod's retention period, for one of them
        p2 = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert p2.returncode == 0, p2.stderr.decode()
        assert len(fake.submitted) == 4  # three before the kill, one again: the one the endpoint had lost
    state = json.loads((out / "rented" / "scenes.json").read_text())
    assert all(Path(out / "rented" / s["image_path"]).is_file() or Path(s["image_path"]).is_file()
               for s in state["scenes"])


def test_gpu_seconds_and_cost_per_scene_in_scenes_json_events_and_summary(tmp_path: Path):
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps({"topic": "costed", "scenes": [
        {"script": f"Line {n}.", "image_prompt": f"a harbour {n}"} for n in (1, 2)]}))
    out, events = tmp_path / "out", tmp_path / "run.events"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_")}
    env.update(RUNPOD_API_KEY=KEY, COLUMNS="200")
    with InThread(FakeRunPod(api_key=KEY, workers=2)) as fake:
        (tmp_path / "sceneforge.toml").write_text(
            f'comfy_urls = [{{url = "{fake.member_url}", concurrency = 2, price_per_second = 0.5}}]\n')
        cmd = [sys.executable, "-m", "sceneforge.cli", "run", str(f), "--out", str(out), "--tts", "espeak",
               "--workflow", "sdxl", "--width", "64", "--height", "64", "--events", str(events)]
        p = subprocess.run(cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert p.returncode == 0, p.stderr.decode()
        executed = {j.id: (j.finished - j.started) for j in fake.jobs.values()}
        again = subprocess.run([*cmd[:-1], str(tmp_path / "again.events")], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert again.returncode == 0 and len(fake.submitted) == 2  # the second run is cached
    state = json.loads((out / "costed" / "scenes.json").read_text())
    seconds = [s["gpu_seconds"]["image"] for s in state["scenes"]]
    assert sorted(seconds) == pytest.approx(sorted(round(v, 3) for v in executed.values()), abs=0.002)
    assert [s["gpu_cost"]["image"] for s in state["scenes"]] == pytest.approx([v * 0.5 for v in seconds], abs=1e-5)
    done = [json.loads(line) for line in events.read_text().splitlines()]
    done = [e for e in done if e["kind"] == "scene_done" and e.get("stage") == "image"]
    assert len(done) == 2 and all("gpu_seconds" in e["data"] and "gpu_cost" in e["data"] for e in done)
    assert b"GPU time" in p.stdout + p.stderr
    # The topic's total counts every job: after a forced re-roll it holds both rolls, the scenes the last one.
    assert state["gpu_seconds_total"]["image"] == pytest.approx(sum(seconds), abs=0.002)
    with InThread(FakeRunPod(api_key=KEY, workers=2)) as fake2:
        (tmp_path / "sceneforge.toml").write_text(f'comfy_urls = [{{url = "{fake2.member_url}", price_per_second = 0.5}}]\n')
        again = subprocess.run([*cmd[:-2], "--force", "--scene", "1"], env=env, cwd=tmp_path,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert again.returncode == 0, again.stderr.decode()
        assert len(fake2.submitted) == 1
    after = json.loads((out / "costed" / "scenes.json").read_text())
    rerolled = after["scenes"][0]["gpu_seconds"]["image"]
    assert after["gpu_seconds_total"]["image"] == pytest.approx(sum(seconds) + rerolled, abs=0.003)
    assert after["scenes"][1]["gpu_seconds"] == state["scenes"][1]["gpu_seconds"]


def test_a_motion_workflow_whose_outputs_a_runpod_worker_cannot_return_is_refused_before_any_job(tmp_path: Path):
    bundled = Path(__file__).resolve().parents[2] / "src" / "sceneforge" / "workflows" / "wan22-14b-i2v.json"
    graph = json.loads(bundled.read_text())
    for nid in [n for n, node in graph.items() if node["class_type"] in ("SaveImage", "SaveVideo", "CreateVideo")]:
        del graph[nid]
    graph["300"] = {"class_type": "VHS_VideoCombine", "inputs": {
        "images": ["87", 0], "frame_rate": 16, "loop_count": 0, "filename_prefix": "sceneforge/vhs",
        "format": "video/h264-mp4", "pingpong": False, "save_output": True}}
    vhs = tmp_path / "vhs.json"
    vhs.write_text(json.dumps(graph))
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps({"topic": "vhs", "scenes": [{"script": "One.", "image_prompt": "a harbour"}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_")}
    env["RUNPOD_API_KEY"] = KEY
    with InThread(FakeRunPod(api_key=KEY)) as fake:
        p = subprocess.run([sys.executable, "-m", "sceneforge.cli", "run", str(f), "--out", str(tmp_path / "out"),
                            "--tts", "espeak", "--workflow", "sdxl", "--motion", "--motion-workflow", str(vhs),
                            "--motion-length", "9", "--comfy-url", fake.member_url],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert fake.submitted == []
    err = (p.stdout + p.stderr).decode()
    assert p.returncode == 2, err
    assert "VHS_VideoCombine" in err and "gifs" in err and "SaveVideo" in err and fake.member_url in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_cancel_every_endpoint_job_in_flight(tmp_path: Path, sig: signal.Signals):
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps({"topic": "stopped", "scenes": [
        {"script": f"Line {n}.", "image_prompt": f"a harbour {n}"} for n in (1, 2, 3)]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_")}
    env["RUNPOD_API_KEY"] = KEY
    thread = InThread(FakeRunPod(api_key=KEY, workers=3))
    with thread as fake:
        thread.loop.call_soon_threadsafe(fake.hold)
        p = subprocess.Popen([sys.executable, "-m", "sceneforge.cli", "run", str(f), "--out", str(tmp_path / "out"),
                              "--tts", "espeak", "--workflow", "sdxl", "--width", "64", "--height", "64",
                              "--comfy-url", fake.member_url], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(fake.jobs) == 3, "three endpoint jobs in flight")
            p.send_signal(sig)
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode != 0
        assert sorted(fake.cancels) == sorted(fake.jobs)
        assert all(j.status == "CANCELLED" for j in fake.jobs.values())
