"""Topics side by side share backends and one server pool; every event still says whose it is."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app
from sceneforge.config import Settings
from sceneforge.events import Event
from sceneforge.pipeline import aplan_run, run_many

SCENE_KINDS = {"scene_started", "scene_cached", "scene_retried", "scene_done", "scene_failed", "job_queued",
               "job_progress"}


def topic(name: str, n: int = 3) -> dict:
    return {"topic": name, "scenes": [{"script": f"{name} line {i}", "image_prompt": f"{name} prompt {i}"}
                                      for i in range(1, n + 1)]}


def positive_prompt(job: dict) -> str:
    return next(n["inputs"]["text"] for n in job["graph"].values() if n["class_type"] == "CLIPTextEncode"
                and n["inputs"]["text"].endswith(tuple("0123456789")))


def check_attribution(events: list[Event], servers: list[FakeComfyServer]) -> int:
    """Every event names its topic; scene events their stage and scene; each job its real owner."""
    assert events and all(e.topic in ("alpha", "beta") for e in events), [e for e in events if not e.topic]
    for e in events:
        if e.kind in SCENE_KINDS:
            assert e.stage in ("audio", "image", "motion") and isinstance(e.scene, int), e
    jobs = {j["prompt_id"]: j for s in servers for j in s.jobs}
    queued = [e for e in events if e.kind == "job_queued"]
    for e in queued:
        # the job that was queued for (topic, scene) really renders that topic's scene
        assert positive_prompt(jobs[e.data["prompt_id"]]) == f"{e.topic} prompt {e.scene}"
    return len(queued)


async def test_two_topics_at_once_every_event_carries_its_topic(servers, tmp_path: Path):
    for s in servers:
        s.job_time = 0.02
    events: list[Event] = []
    settings = Settings(out_dir=tmp_path, tts="fake", comfy_urls=tuple(s.url for s in servers), workflow="sdxl",
                        stages=("audio", "image"))
    results = await run_many(await aplan_run([topic("alpha"), topic("beta")], settings), emit=events.append)
    assert [exc for _, exc in results] == [None, None]
    assert check_attribution(events, servers) == 6
    # both topics really ran at the same time: their jobs interleave on the servers
    order = [positive_prompt(j).split()[0] for s in servers for j in sorted(s.jobs, key=lambda j: j["start"])]
    assert "alpha" in order[:4] and "beta" in order[:4]


def test_two_files_on_the_command_line_events_name_their_topic(tmp_path: Path):
    with FakeComfyServer(job_time=0.01) as srv:
        srv.accept_any_model = True
        files = []
        for name in ("alpha", "beta"):
            f = tmp_path / f"{name}.json"
            f.write_text(json.dumps(topic(name, 2)))
            files.append(str(f))
        events_file = tmp_path / "events.jsonl"
        r = CliRunner().invoke(app, ["run", *files, "--out", str(tmp_path / "out"), "--tts", "fake", "--comfy-url",
                                     srv.url, "--workflow", "sdxl", "--events", str(events_file)])
        assert r.exit_code == 0, r.output
        raw = [json.loads(line) for line in events_file.read_text().splitlines()]
        assert not [e for e in raw if e.get("topic") is None]
        events = [Event(kind=e["kind"], stage=e.get("stage"), scene=e.get("scene"), topic=e["topic"],
                        data=e.get("data", {})) for e in raw]
        assert check_attribution(events, [srv]) == 4
