"""generate_assets: overlap equals sequential, stages really overlap, the pool balances and fails over."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fakes.backends import FakeTTS
from sceneforge.config import Settings
from sceneforge.errors import error_text
from sceneforge.events import Event
from sceneforge.pipeline import agenerate_assets, generate_assets

SCENES = [{"script": f"line {n}", "image_prompt": f"prompt {n}", "extra": n} for n in range(1, 7)]


def settings(tmp: Path, urls: list[str], **kw: Any) -> Settings:
    base: dict[str, Any] = dict(out_dir=tmp, tts="fake", comfy_urls=tuple(urls), workflow="sdxl", seed=7,
                                stages=("audio", "image"))
    base.update(kw)
    return Settings(**base)


def normalized(state: dict[str, Any], root: Path) -> str:
    """The state without what only timing decides (the GPU seconds each job took; their presence stays)."""
    scenes = [{k: (sorted(v) if k == "gpu_seconds" else v) for k, v in s.items()} for s in state["scenes"]]
    top = {k: (sorted(v) if k == "gpu_seconds_total" else v) for k, v in state.items()}
    return json.dumps({**top, "scenes": scenes}, sort_keys=True).replace(str(root), "ROOT")


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".sceneforge" not in p.parts}


async def test_overlap_gives_the_same_result_as_sequential(servers, tmp_path: Path):
    state = {"topic": "same", "scenes": SCENES}
    a = await agenerate_assets(state, settings(tmp_path / "a", [servers[0].url]))
    b = await agenerate_assets(state, settings(tmp_path / "b", [servers[1].url], sequential=True))
    assert normalized(a, tmp_path / "a") == normalized(b, tmp_path / "b")
    fa, fb = files(tmp_path / "a" / "same"), files(tmp_path / "b" / "same")
    fa.pop("scenes.json"), fb.pop("scenes.json")
    assert fa == fb and len(fa) == 6 * 3  # mp3 + srt + png per scene


async def test_narration_runs_while_images_render(servers, tmp_path: Path):
    """Scene 1's narration waits for scene 1's image: only possible when the stages overlap."""
    image_done = asyncio.Event()

    def on_event(ev: Event) -> None:
        if ev.kind == "scene_done" and ev.stage == "image":
            image_done.set()

    real = FakeTTS.synthesize

    async def gated(self, text, dest):
        await asyncio.wait_for(image_done.wait(), 10)
        return await real(self, text, dest)

    FakeTTS.synthesize = gated  # type: ignore[method-assign]
    try:
        out = await agenerate_assets({"topic": "t", "scenes": SCENES[:3]}, settings(tmp_path, [servers[0].url]),
                                     on_event=on_event)
    finally:
        FakeTTS.synthesize = real  # type: ignore[method-assign]
    assert all(Path(s["audio_path"]).exists() and Path(s["image_path"]).exists() for s in out["scenes"])


async def test_pool_balances_jobs(servers, tmp_path: Path):
    for s in servers:
        s.job_time = 0.05  # one GPU each: jobs queue, so balancing matters
    queued: list[Event] = []
    await agenerate_assets({"topic": "t", "scenes": SCENES}, settings(tmp_path, [s.url for s in servers]),
                           on_event=lambda e: queued.append(e) if e.kind == "job_queued" else None)
    counts = [len(s.jobs) for s in servers]
    assert sum(counts) == 6 and min(counts) >= 2, counts
    assert {e.data["server"] for e in queued} == {s.url for s in servers}


async def kill(srv) -> None:
    """The machine dies: every connection closes and whatever it was running or holding is gone."""
    await srv.runner.forget_everything()
    await srv.aclose()


async def test_failover_when_a_server_dies(servers, tmp_path: Path):
    a, b = servers
    a.job_time = b.job_time = 0.05
    events: list[Event] = []
    killed = asyncio.Event()

    def on_event(ev: Event) -> None:
        events.append(ev)
        if ev.kind == "scene_done" and ev.stage == "image" and not killed.is_set():
            killed.set()
            asyncio.get_running_loop().create_task(kill(a))

    out = await agenerate_assets({"topic": "t", "scenes": SCENES}, settings(tmp_path, [a.url, b.url], comfy_timeout=20, comfy_poll_interval=0.02),
                                 on_event=on_event)
    assert all(Path(s["image_path"]).is_file() for s in out["scenes"])
    # nothing finished was done twice: each scene's image job completed exactly once across both servers
    done: dict[str, int] = {}
    for srv in servers:
        for job in srv.jobs:
            if job["status"] == "success":
                prefix = next(n["inputs"]["filename_prefix"] for n in job["graph"].values() if n["class_type"] == "SaveImage")
                done[prefix] = done.get(prefix, 0) + 1
    assert sorted(done) == sorted(f"sceneforge/scene_{n}" for n in range(1, 7))
    assert set(done.values()) == {1}
    assert not [e for e in events if e.kind == "scene_failed"]
    assert any(j["status"] != "success" for j in a.jobs)  # work really was in flight on the dead server
    assert any(e.kind == "warning" and "stopped answering" in e.data["message"] for e in events)


async def test_event_sequence_with_a_retry_and_a_failure(tmp_path: Path):
    FakeTTS.fail_times = {"line 2": 1, "line 3": 99}
    events: list[Event] = []
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    from sceneforge.pipeline import agenerate_assets as run

    with pytest.raises(Exception) as ei:
        await run({"topic": "t", "scenes": SCENES[:3]}, Settings(out_dir=tmp_path, tts="fake", stages=("audio",)),
                  on_event=events.append, sleep=sleep)
    assert "scene 3" in error_text(ei.value)
    seq = [(e.kind, e.stage, e.scene) for e in events if e.kind != "warning"]
    assert seq[0] == ("run_started", None, None) and seq[1] == ("stage_started", "audio", None)
    assert ("scene_retried", "audio", 2) in seq and ("scene_done", "audio", 2) in seq
    assert seq.count(("scene_retried", "audio", 3)) == 2 and ("scene_failed", "audio", 3) in seq
    assert seq[-1] == ("stage_done", "audio", None)
    failed = next(e for e in events if e.kind == "scene_failed")
    assert failed.data["reason"] and failed.topic == "t"
    for e in events:
        json.loads(e.to_json())  # every event is JSON
    assert waits == [1.0, 1.0, 2.0]


def test_generate_assets_on_the_original_systems_state(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = {
        "topic": "topic",
        "scenes": [
            {"script": "요즘 AI 얘기 너무 많이 나오죠?", "image_prompt": "masterpiece, best quality, ...",
             "audio_path": "", "image_path": ""},
        ],
    }
    out = generate_assets(state, Settings(offline=True))
    sc = out["scenes"][0]
    assert sc["audio_path"] == "output/topic/audio_scene_1.mp3"
    assert sc["image_path"] == "output/topic/image_scene_1.png"
    assert Path(sc["audio_path"]).stat().st_size > 0 and Path(sc["image_path"]).stat().st_size > 0
    assert "motion_frames_path" not in sc  # motion is off by default, as in the original system


async def test_motion_starts_before_the_last_image_finishes(servers, tmp_path: Path):
    """Checked on the server's job log (execution order), not with timings."""
    srv = servers[0]
    srv.job_time = 0.02
    s = settings(tmp_path, [srv.url], stages=("image", "motion"), motion_enabled=True, motion_length=5)
    out = await agenerate_assets({"topic": "t", "scenes": SCENES}, s)
    assert all(len(sc["motion_frames_path"]) == 5 for sc in out["scenes"])

    def kind(job):
        return "motion" if any(n["class_type"] == "LoadImage" for n in job["graph"].values()) else "image"

    images = [j for j in srv.jobs if kind(j) == "image"]
    motions = [j for j in srv.jobs if kind(j) == "motion"]
    assert len(images) == len(motions) == 6
    assert min(j["start"] for j in motions) < max(j["end"] for j in images)


async def test_sequential_keeps_the_original_order(servers, tmp_path: Path):
    srv = servers[0]
    s = settings(tmp_path, [srv.url], stages=("image", "motion"), motion_enabled=True, motion_length=5, sequential=True)
    await agenerate_assets({"topic": "t", "scenes": SCENES[:3]}, s)
    kinds = ["motion" if any(n["class_type"] == "LoadImage" for n in j["graph"].values()) else "image"
             for j in sorted(srv.jobs, key=lambda j: j["start"])]
    assert kinds == ["image"] * 3 + ["motion"] * 3


async def test_the_only_server_restarting_mid_run_is_waited_for(servers, tmp_path: Path):
    """A ComfyUI restart (down for a moment, queue and history forgotten) does not fail the run."""
    srv = servers[0]
    srv.job_time = 0.05
    events: list[Event] = []
    restarted = asyncio.Event()

    def on_event(ev: Event) -> None:
        events.append(ev)
        if ev.kind == "scene_done" and ev.stage == "image" and not restarted.is_set():
            restarted.set()
            asyncio.get_running_loop().create_task(srv.restart(down_for=0.3))

    waits: list[float] = []

    async def sleep(s: float) -> None:  # the stage's retry waits, recorded
        waits.append(s)

    out = await agenerate_assets({"topic": "t", "scenes": SCENES[:4]},
                                 settings(tmp_path, [srv.url], stages=("image",), comfy_poll_interval=0.02),
                                 on_event=on_event, sleep=sleep)
    assert all(Path(s["image_path"]).is_file() for s in out["scenes"])
    assert not [e for e in events if e.kind == "scene_failed"]
    assert any(j["status"] == "lost" for j in srv.jobs)  # the restart really lost work


async def test_every_failed_stage_is_named(servers, tmp_path: Path):
    FakeTTS.fail_times = {"line 1": 99}
    servers[0].fault("node_errors", times=99)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    with pytest.raises(Exception) as ei:
        await agenerate_assets({"topic": "t", "scenes": SCENES[:1]}, settings(tmp_path, [servers[0].url]), sleep=sleep)
    text = error_text(ei.value)
    assert text.startswith("scene 1 (audio)")
    assert "\nalso: scene 1 (image)" in text and "rejected the workflow" in text.split("also:")[1]


async def test_a_dead_server_ends_every_scene_in_a_failed_event(tmp_path: Path, dead_url: str):
    events: list[Event] = []
    s = settings(tmp_path, [dead_url], stages=("audio", "image", "motion"), motion_enabled=True)
    with pytest.raises(RuntimeError):
        await agenerate_assets({"topic": "t", "scenes": SCENES[:3]}, s, on_event=events.append)
    failed = {(e.stage, e.scene) for e in events if e.kind == "scene_failed"}
    assert failed == {(stage, n) for stage in ("image", "motion") for n in (1, 2, 3)}
    assert [e.stage for e in events if e.kind == "stage_done"].count("image") == 1
    assert any(e.kind == "stage_done" and e.stage == "motion" for e in events)
