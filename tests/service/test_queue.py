"""The queue against the fake ComfyUI server: cancel, a full queue, two topics at once, a failed job's
reason, and a restart in the middle of a run that re-attaches to its jobs instead of running them twice."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

from service_helpers import statuses, topic, with_comfy

from fakes.comfy_server import FakeComfyServer


def rendered(srv: FakeComfyServer) -> Counter[str]:
    """How many jobs the server ran per positive prompt (``<topic> prompt <n>``)."""
    found: Counter[str] = Counter()
    for job in srv.jobs:
        texts = [n["inputs"].get("text") for n in job["graph"].values() if n.get("class_type") == "CLIPTextEncode"]
        found.update(t for t in texts if isinstance(t, str) and re.search(r" prompt \d+$", t))
    return found


def is_queued_job(event: dict) -> bool:
    return event["kind"] == "job_queued"


async def test_cancel_mid_run_deletes_and_interrupts_the_job_on_the_server(start, comfy, tmp_path: Path):
    comfy.fault("hang")  # the job runs until someone interrupts it
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit(topic("stop me", 2))
    queued = await svc.stream("stop-me", until_idle=False, stop=is_queued_job)
    prompt_id = queued[-1]["data"]["prompt_id"]
    assert queued[-1]["stage"] == "image" and queued[-1]["data"]["server"] == comfy.url

    for method, path, body in (("POST", "/api/topics", topic("stop me", 2)), ("DELETE", "/api/topics/stop-me", None),
                               ("PATCH", "/api/topics/stop-me/scenes/1", {"script": "x"}),
                               ("POST", "/api/topics/stop-me/scenes/1/regenerate", {"stage": "image"}),
                               ("POST", "/api/topics/stop-me/preview", None)):
        status, answer = await svc.call(method, path, body=body)
        assert status == 409 and answer["detail"] == "topic 'stop-me' is running; wait for its job to end or cancel it"

    status, answer = await svc.call("POST", "/api/topics/stop-me/cancel")
    assert (status, answer) == (200, {"slug": "stop-me", "status": "cancelled"})
    assert prompt_id in comfy.queue_deletes
    assert {"prompt_id": prompt_id} in comfy.interrupts
    assert not [j for j in comfy.jobs if j.get("status") == "success"]
    events = await svc.stream("stop-me")
    assert statuses(events) == ["queued", "running", "cancelled"]
    status, answer = await svc.call("POST", "/api/topics/stop-me/cancel")
    assert status == 409 and "no job to cancel" in answer["detail"]

    comfy.clear_faults()  # the topic runs again from where it was: narration is kept
    await svc.submit(topic("stop me", 2))
    state = await svc.wait("stop-me")
    assert state["status"] == "done" and all("image" in s["urls"] for s in state["scenes"])


async def test_a_queued_job_is_cancelled_and_a_full_queue_answers_429(start, comfy, tmp_path: Path):
    comfy.fault("hang")
    svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1, serve_max_queued=1))
    await svc.submit(topic("a", 1))
    await svc.stream("a", until_idle=False, stop=is_queued_job)
    await svc.submit(topic("b", 1))
    async with svc.http.post(svc.url + "/api/topics", json=topic("c", 1)) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "5"
        assert (await resp.json())["detail"] == "the queue is full (1 jobs waiting); try again later"
    assert not (svc.out / "c").exists()

    assert await svc.call("POST", "/api/topics/b/cancel") == (200, {"slug": "b", "status": "cancelled"})
    await svc.submit(topic("c", 1))  # room again
    comfy.clear_faults()
    await svc.call("POST", "/api/topics/a/cancel")
    state = await svc.wait("c")
    assert state["status"] == "done"
    assert statuses(await svc.stream("b")) == ["queued", "cancelled"]
    assert (await svc.call("GET", "/api/topics/b"))[1]["status"] == "cancelled"


async def test_two_topics_run_at_once_and_share_the_server(start, comfy, tmp_path: Path):
    comfy.job_time = 0.05
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit(topic("alpha", 3))
    await svc.submit(topic("beta", 3))
    assert (await svc.wait("alpha"))["status"] == (await svc.wait("beta"))["status"] == "done"
    alpha, beta = await svc.stream("alpha"), await svc.stream("beta")
    for slug, events in (("alpha", alpha), ("beta", beta)):
        assert all(e["topic"] == slug for e in events)
        assert {e["scene"] for e in events if e["kind"] == "job_queued"} == {1, 2, 3}

    def when(events, kind, **match):
        return [e["time"] for e in events if e["kind"] == kind and all(e.get(k) == v or e["data"].get(k) == v
                                                                      for k, v in match.items())]

    # both ran at once: beta was running before alpha was done, and its first job was on the
    # server's queue while alpha's images were still rendering (the GPU never waited between topics)
    assert when(beta, "status", status="running")[0] < when(alpha, "status", status="done")[0]
    assert min(when(beta, "job_queued")) < max(when(alpha, "scene_done", stage="image"))
    assert rendered(comfy) == {f"{t} prompt {n}": 1 for t in ("alpha", "beta") for n in (1, 2, 3)}
    assert len({c["client_id"] for c in comfy.ws_connects}) == 1  # one client of one pool for both topics


async def test_a_failed_job_says_why(start, comfy, tmp_path: Path):
    comfy.fault("node_errors")
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit(topic("broken", 2))
    state = await svc.wait("broken")
    assert state["status"] == "failed"
    assert state["error"].startswith("scene 1 (image): ") and "node" in state["error"]
    assert all("audio" in s["urls"] and "image" not in s["urls"] for s in state["scenes"])  # narration kept
    events = await svc.stream("broken")
    assert [e["data"]["error"] for e in events if e["kind"] == "status"][-1] == state["error"]
    assert {e["scene"] for e in events if e["kind"] == "scene_failed"} == {1, 2}


async def test_a_restart_mid_run_resumes_without_running_any_job_twice(start, comfy, tmp_path: Path):
    comfy.gate = asyncio.Event()  # the GPU is busy: jobs queue up on the server and none finishes
    settings = with_comfy(tmp_path, comfy)
    first = await start(settings)
    await first.submit(topic("again", 3))
    queued = 0

    def two_queued(event: dict) -> bool:
        nonlocal queued
        queued += is_queued_job(event)
        return queued == 2

    await first.stream("again", until_idle=False, stop=two_queued)
    await first.stop()  # Ctrl-C: the job is interrupted, its ComfyUI jobs stay on the server
    assert comfy.queue_deletes == [] and comfy.interrupts == []
    saved = json.loads((first.out / "again" / ".sceneforge" / "service" / "status.json").read_text())
    assert saved["status"] == "interrupted"
    # A server holds two jobs of a pool (one running, one queued): the third was never submitted.
    assert len(comfy.prompts) == 2 and {j["status"] for j in comfy.jobs} == {"pending"}

    comfy.gate.set()
    second = await start(settings)
    state = await second.wait("again")
    assert state["status"] == "done" and all("image" in s["urls"] for s in state["scenes"])
    assert statuses(await second.stream("again")) == ["queued", "running", "interrupted", "queued", "running",
                                                      "done"]
    assert len(comfy.prompts) == 3  # the resumed run submitted only what the first had not
    assert rendered(comfy) == {f"again prompt {n}": 1 for n in (1, 2, 3)}  # no job ran twice


async def test_a_service_killed_mid_job_marks_it_interrupted_and_resumes_it(start, tmp_path: Path):
    """What a killed service leaves: status.json still says running (nobody wrote otherwise)."""
    from service_helpers import offline

    from sceneforge.service.models import JobSpec, JobStatus
    from sceneforge.service.store import TopicRecord, TopicStore

    root = tmp_path / "out" / "killed"
    (root).mkdir(parents=True)
    (root / "scenes.json").write_text(json.dumps(topic("killed", 2)))
    TopicStore(tmp_path / "out").save(TopicRecord("killed", "killed", JobStatus.RUNNING, job=JobSpec("run"),
                                                  options={"stages": ["audio"]}))
    svc = await start(offline(tmp_path))
    state = await svc.wait("killed")
    assert state["status"] == "done" and all("audio" in s["urls"] for s in state["scenes"])
    assert statuses(await svc.stream("killed")) == ["interrupted", "queued", "running", "done"]
    assert not (root / "image_scene_1.png").exists()  # its own options (audio only) were kept


async def test_a_re_roll_interrupted_mid_job_re_attaches_instead_of_rolling_twice(start, comfy, tmp_path: Path):
    settings = with_comfy(tmp_path, comfy)
    first = await start(settings)
    await first.submit(topic("reroll", 2))
    await first.wait("reroll")
    comfy.job_time = 0.3
    await first.call("POST", "/api/topics/reroll/scenes/1/regenerate", body={"stage": "image"})
    queued = await first.stream("reroll", until_idle=False, stop=lambda e: e["kind"] == "job_queued"
                                and e["data"].get("prompt_id") not in {j["prompt_id"] for j in comfy.jobs[:2]})
    rolled = queued[-1]["data"]["prompt_id"]
    await first.stop()

    second = await start(settings)
    state = await second.wait("reroll")
    assert state["status"] == "done"
    assert rendered(comfy) == {"reroll prompt 1": 2, "reroll prompt 2": 1}  # the first roll, and the re-roll once
    assert [j["prompt_id"] for j in comfy.jobs][-1] == rolled
    status, takes = await second.call("GET", "/api/topics/reroll/scenes/1/takes")
    assert [t["current"] for t in takes["image"]] == [False, True]
    new_seed = next(n["inputs"]["seed"] for n in comfy.jobs[-1]["graph"].values() if "seed" in n["inputs"])
    assert takes["image"][1]["seed"] == state["scenes"][0]["image_seed"] == new_seed


def test_a_resumed_re_roll_is_forced_again_only_while_the_old_take_is_current(tmp_path: Path):
    from service_helpers import offline

    from sceneforge.pipeline import Topic, generate_assets
    from sceneforge.service.models import JobSpec
    from sceneforge.service.runner import job_run_settings

    settings = offline(tmp_path)
    generate_assets(topic("marks", 1), settings)
    ws = Topic.open(settings.out_dir, "marks")
    marker = ws.current("image", 1)
    assert marker is not None
    asked = JobSpec("regenerate", 1, "image", marker)
    assert job_run_settings(settings, {}, asked, ws, resumed=False).force
    assert job_run_settings(settings, {}, asked, ws, resumed=True).force  # the old take still current
    moved_on = JobSpec("regenerate", 1, "image", "an-older-take")
    assert not job_run_settings(settings, {}, moved_on, ws, resumed=True).force
    rerolled = job_run_settings(settings, {}, moved_on, ws, resumed=False)
    assert rerolled.force and rerolled.only_scenes == frozenset({1}) and rerolled.stages == ("image",)


async def test_the_command_line_is_refused_a_topic_the_service_is_running(start, comfy, tmp_path: Path):
    import asyncio

    from typer.testing import CliRunner

    from sceneforge.cli import app

    comfy.fault("hang")
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit(topic("busy", 1))
    await svc.stream("busy", until_idle=False, stop=is_queued_job)
    scene_file = tmp_path / "busy.json"
    scene_file.write_text(json.dumps(topic("busy", 1)))
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "run", str(scene_file), "--out", str(svc.out), "--tts", "fake", "--comfy-url", comfy.url])
    assert result.exit_code == 1 and "another sceneforge run is writing" in result.output
    await svc.call("POST", "/api/topics/busy/cancel")
