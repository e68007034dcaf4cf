"""The image stage through the original system's node function, against the fake ComfyUI server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings
from sceneforge.errors import ServerUnavailableError, TransientError, WorkflowError, error_text
from sceneforge.events import Event
from sceneforge.pipeline.nodes import avisual_generator

STATE = {"topic": "img", "scenes": [{"script": "a", "image_prompt": "red fox"}, {"script": "b", "image_prompt": "blue bird"},
                                    {"script": "c", "image_prompt": "green frog"}]}


@pytest.fixture
async def srv() -> AsyncIterator[FakeComfyServer]:
    async with FakeComfyServer() as s:
        s.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
        yield s


def settings(tmp: Path, url: str, **kw) -> Settings:
    return Settings(out_dir=tmp, comfy_urls=(url,), workflow="sdxl", width=64, height=64, **kw)


class Waits:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, s: float) -> None:
        self.waits.append(s)


async def test_images_made_and_recorded(srv, tmp_path: Path):
    out = await avisual_generator(STATE, settings(tmp_path, srv.url), sleep=Waits())
    for n, sc in enumerate(out["scenes"], 1):
        assert sc["image_path"] == str(tmp_path / "img" / f"image_scene_{n}.png")
        assert Path(sc["image_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert isinstance(sc["image_seed"], int)
    prompts = [next(n["inputs"]["text"] for k, n in p["prompt"].items() if k == "6") for p in srv.prompts]
    assert sorted(prompts) == ["blue bird", "green frog", "red fox"]
    assert sum(1 for r in srv.requests if r["path"].endswith("/system_stats")) == 1  # health check once


async def test_retry_waits_three_then_six(srv, tmp_path: Path):
    srv.fault("prompt_500", times=2)
    waits = Waits()
    events: list[Event] = []
    out = await avisual_generator({"topic": "img", "scenes": STATE["scenes"][:1]}, settings(tmp_path, srv.url),
                                  on_event=events.append, sleep=waits)
    assert waits.waits == [3.0, 6.0]
    assert [e.data["attempt"] for e in events if e.kind == "scene_retried"] == [1, 2]
    assert Path(out["scenes"][0]["image_path"]).is_file()


async def test_gives_up_after_three_attempts(srv, tmp_path: Path):
    srv.fault("prompt_500", times=10)
    waits = Waits()
    with pytest.raises(TransientError) as ei:
        await avisual_generator({"topic": "img", "scenes": STATE["scenes"][:1]}, settings(tmp_path, srv.url), sleep=waits)
    assert isinstance(ei.value, RuntimeError) and "gave up after 3 attempts" in ei.value.__notes__ and waits.waits == [3.0, 6.0]
    assert "scene 1" in error_text(ei.value)


async def test_rejected_workflow_is_not_retried(srv, tmp_path: Path):
    srv.models["checkpoints"].clear()  # the checkpoint is missing: 400 node_errors
    waits = Waits()
    with pytest.raises(WorkflowError, match="ckpt_name") as ei:
        await avisual_generator({"topic": "img", "scenes": STATE["scenes"][:1]}, settings(tmp_path, srv.url), sleep=waits)
    assert isinstance(ei.value, ValueError) and waits.waits == []


async def test_missing_prompt_is_value_error_before_any_job(srv, tmp_path: Path):
    bad = {"topic": "img", "scenes": [{"script": "a", "image_prompt": "x"}, {"script": "b"}]}
    with pytest.raises(ValueError, match="scene 2: image_prompt is missing"):
        await avisual_generator(bad, settings(tmp_path, srv.url), sleep=Waits())
    assert srv.prompts == [] and not tmp_path.joinpath("img").exists()


async def test_unreachable_server_is_runtime_error(tmp_path: Path, dead_url: str):
    with pytest.raises(RuntimeError) as ei:
        await avisual_generator(STATE, settings(tmp_path, dead_url), sleep=Waits())
    assert isinstance(ei.value, ServerUnavailableError) and dead_url.removeprefix("http://") in error_text(ei.value)


async def test_prompt_edit_regenerates_only_that_image(srv, tmp_path: Path):
    s = settings(tmp_path, srv.url)
    await avisual_generator(STATE, s, sleep=Waits())
    root = tmp_path / "img"
    before = {p.name: p.stat().st_mtime_ns for p in root.glob("*.png")}
    n_jobs = len(srv.prompts)
    edited = json.loads(json.dumps(STATE))
    edited["scenes"][1]["image_prompt"] = "blue bird, watercolor"
    await avisual_generator(edited, s, sleep=Waits())
    assert len(srv.prompts) == n_jobs + 1
    after = {p.name: p.stat().st_mtime_ns for p in root.glob("*.png")}
    assert {k for k in after if after[k] != before[k]} == {"image_scene_2.png"}
    # an unchanged run submits nothing and does not even need the server's health check
    checks = sum(1 for r in srv.requests if r["path"].endswith("/system_stats"))
    await avisual_generator(edited, s, sleep=Waits())
    assert len(srv.prompts) == n_jobs + 1
    assert sum(1 for r in srv.requests if r["path"].endswith("/system_stats")) == checks


async def test_fixed_seed_is_recorded_and_part_of_the_cache_key(srv, tmp_path: Path):
    out = await avisual_generator(STATE, settings(tmp_path, srv.url, seed=1234), sleep=Waits())
    assert {sc["image_seed"] for sc in out["scenes"]} == {1234}
    n = len(srv.prompts)
    await avisual_generator(STATE, settings(tmp_path, srv.url, seed=99), sleep=Waits())
    assert len(srv.prompts) == n + 3


async def test_a_timed_out_job_is_resubmitted_not_reattached(srv, tmp_path: Path):
    """ComfyUI applies an interrupt only at the next node or progress tick (seconds later). The retry
    after a timeout must submit a new job, not re-attach to the one being cancelled."""
    import asyncio

    times = iter([1.5])
    srv.job_time = lambda graph: next(times, 0.0)  # the first job is slow, the retry is quick
    real_interrupt = srv.runner.interrupt

    def late_interrupt(pid):
        asyncio.get_running_loop().call_later(0.4, real_interrupt, pid)

    srv.runner.interrupt = late_interrupt
    waits = Waits()
    out = await avisual_generator({"topic": "img", "scenes": STATE["scenes"][:1]},
                                  settings(tmp_path, srv.url, comfy_timeout=0.2), sleep=waits)
    assert waits.waits == [3.0]
    assert len(srv.prompts) == 2 and Path(out["scenes"][0]["image_path"]).is_file()
