"""A RunPod endpoint (worker-comfyui) as a pool member, against the fake control plane (``fakes/runpod.py``)."""

from __future__ import annotations

import asyncio
import base64
import random

import pytest
from comfy_helpers import FakeTime, exception_chain_text
from PIL import Image

from fakes.comfy_server import FakeComfyServer
from fakes.runpod import FakeRunPod
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.endpoints.runpod import RunPodClient
from sceneforge.comfy.graphs.workflow import Workflow
from sceneforge.comfy.pool.pool import ComfyPool
from sceneforge.comfy.pool.servers import members_from_settings, pool_from_settings
from sceneforge.config import Settings
from sceneforge.errors import (
    ConfigError,
    DownloadError,
    GenerationError,
    JobTimeoutError,
    PermanentError,
    UnsafePathError,
    WorkflowError,
)
from sceneforge.events import Event, bound_reporter
from sceneforge.images import ImageRequest
from sceneforge.images.comfyui import ComfyImageBackend
from sceneforge.motion import MotionRequest
from sceneforge.motion.wan import WanBackend, upload_name

KEY = "rp-secret-KEY-123"


@pytest.fixture
async def runpod():
    async with FakeRunPod(api_key=KEY, workers=2) as fake:
        yield fake


def member(fake: FakeRunPod, t: FakeTime | None = None, **kw) -> RunPodClient:
    t = t or FakeTime()
    return RunPodClient(fake.base_url, server=fake.member_url, api_key=kw.pop("api_key", KEY),
                        sleep=t.sleep, clock=t.clock, **kw)


def sdxl_graph(prompt: str = "a lighthouse") -> dict:
    return Workflow.load("sdxl").prepare_image(prompt, seed=1, width=64, height=64)[0]


async def test_image_scene_runs_on_the_endpoint_and_is_decoded(runpod, tmp_path):
    t = FakeTime()
    client = member(runpod, t)
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=ComfyPool([client]), width=64, height=64,
                                rng=random.Random(1))
    try:
        await backend.start()
        result = await backend.generate(ImageRequest(2, "a lighthouse", tmp_path / "scene_2.png"))
    finally:
        await backend.pool.aclose()
    with Image.open(result.path) as im:
        assert im.size == (64, 64)
    sent = runpod.submitted[0]
    assert sent["workflow"]["6"]["inputs"]["text"].startswith("a lighthouse") or any(
        n.get("inputs", {}).get("text") == "a lighthouse" for n in sent["workflow"].values())
    assert "images" not in sent  # a text-to-image job has no input files
    assert all(status in (200,) for _, path, status in runpod.requests)
    # Polls are injected waits, at most one a second per job after the first.
    assert t.sleeps and all(s >= 1.0 for s in t.sleeps[1:])


async def test_jobs_are_asked_about_when_the_forecast_says_and_the_worker_count_comes_from_health(runpod):
    t = FakeTime()
    client = member(runpod, t)
    try:
        results = await asyncio.gather(*(client.run(sdxl_graph(f"scene {i}")) for i in range(4)))
    finally:
        await client.aclose()
    assert len({r.prompt_id for r in results}) == 4
    assert ("GET", "/v2/ep1/health", 200) in runpod.requests  # asked while jobs were in flight
    assert client.forecast.workers() == 2 and client.forecast.work("") is not None  # two workers, run times learnt
    assert not client.forecast.stale(t.clock())  # nothing left in flight


async def test_load_image_inputs_travel_inline(runpod, tmp_path):
    png = tmp_path / "ref.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(png)
    client = member(runpod)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sceneforge/scene_1"}},
    }
    try:
        graph["1"]["inputs"]["image"] = await client.upload_image(png, name="sceneforge_abc.png")
        result = await client.run(graph)
    finally:
        await client.aclose()
    images = runpod.submitted[0]["images"]
    assert [i["name"] for i in images] == ["sceneforge_abc.png"]
    assert base64.b64decode(images[0]["image"]) == png.read_bytes()
    assert result.still_images() and result.gpu_seconds is not None and result.queue_seconds is not None


@pytest.mark.parametrize("delay, execution", [(-5, float("inf")), (10**400, 10**400)])
async def test_timings_that_are_not_finite_durations_are_not_kept(runpod, monkeypatch, delay, execution):
    from fakes.runpod import FakeRunPodJob

    real = FakeRunPodJob.answer

    def hostile(job: FakeRunPodJob) -> dict:
        out = real(job)
        if "delayTime" in out:
            out["delayTime"] = delay  # negative, or an integer past any float
        if "executionTime" in out:
            out["executionTime"] = execution  # Infinity (which Python's json reads back), or past any float
        return out

    monkeypatch.setattr(FakeRunPodJob, "answer", hostile)
    client = member(runpod)
    try:
        result = await client.run(sdxl_graph())
    finally:
        await client.aclose()
    assert result.still_images() and result.gpu_seconds is None and result.queue_seconds is None
    assert client.forecast.work("") is None  # nothing learnt from them


async def test_a_resumed_job_is_asked_again_a_second_on_at_the_soonest(runpod):
    runpod.hold()  # the job stays queued
    first, ids = member(runpod), []
    first.keep_abandoned_jobs = True  # as a run killed with kill -9: the job stays on the endpoint
    task = asyncio.ensure_future(first.run(sdxl_graph(), on_submit=lambda i, c: ids.append(i)))
    while not ids:
        await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.aclose()
    t = FakeTime()
    client = member(runpod, t)
    client.forecast.submitted("x", "k", t.clock())
    client.forecast.finished("x", queue_s=0.0, work_s=0.1)  # a short run time is known: forecasts come soon
    asked, status = [], client.status

    async def recorded(job_id: str):
        asked.append(t.clock())
        if len(asked) == 3:
            runpod.release()
        return await status(job_id)

    client.status = recorded  # type: ignore[method-assign]
    try:
        result = await client.resume(ids[0], "runpod")
    finally:
        await client.aclose()
    assert result is not None and result.still_images() and len(runpod.submitted) == 1
    assert len(asked) >= 3 and all(b - a >= 1.0 for a, b in zip(asked, asked[1:])), asked


async def test_s3_url_outputs_are_fetched_without_the_key(tmp_path):
    async with FakeRunPod(api_key=KEY, s3=True) as fake:
        client = member(fake)
        try:
            result = await client.run(sdxl_graph())
            ref = result.still_images()[0]
            assert ref["transport"] == "url"
            await client.download(ref, tmp_path / "out.png")
        finally:
            await client.aclose()
        assert fake.s3_requests and all("Authorization" not in h for h in fake.s3_requests)
    with Image.open(tmp_path / "out.png") as im:
        im.load()


@pytest.mark.parametrize("ref, error", [
    ({"filename": "a.png", "transport": "url", "data": "file:///etc/passwd"}, UnsafePathError),
    ({"filename": "a.png", "transport": "url", "data": "ftp://host/a.png"}, UnsafePathError),
    ({"filename": "../a.png", "transport": "base64", "data": "AAAA"}, UnsafePathError),
    ({"filename": "a.png", "transport": "base64", "data": "not base64!!"}, DownloadError),
    ({"filename": "a.png", "transport": "base64", "data": base64.b64encode(b"<html>login</html>").decode()},
     DownloadError),
    ({"filename": "a.png", "transport": "base64", "data": "A" * 4000}, DownloadError),  # over the cap below
])
async def test_untrusted_outputs_are_refused_and_leave_nothing(runpod, tmp_path, ref, error):
    client = member(runpod, max_download_bytes=2000)
    with pytest.raises(error):
        await client.download(ref, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
    await client.aclose()


async def test_rate_limits_wait_for_retry_after(runpod):
    t = FakeTime()
    runpod.rate_limit("run", 2, 3)
    runpod.rate_limit("status", 1.5)
    client = member(runpod, t)
    try:
        await client.run(sdxl_graph())
    finally:
        await client.aclose()
    assert client.rate_limited == [2.0, 3.0, 1.5]
    assert t.sleeps[:2] == [2.0, 3.0] and 1.5 in t.sleeps
    assert len(runpod.submitted) == 1


async def test_a_retry_after_of_zero_is_not_a_burst(runpod):
    t = FakeTime()
    runpod.rate_limit("status", 0, 0, 0)
    client = member(runpod, t)
    try:
        await client.run(sdxl_graph())
    finally:
        await client.aclose()
    assert client.rate_limited == [1.0, 1.0, 1.0]  # a second each, not three requests at once


async def test_wrong_key_is_a_config_error_that_never_shows_a_key(runpod):
    client = member(runpod, api_key="rp-wrong-SECRET")
    with pytest.raises(ConfigError) as ei:
        await client.run(sdxl_graph())
    text = exception_chain_text(ei.value) + repr(client) + client.server
    assert "401" in text and runpod.member_url in text
    assert "rp-wrong-SECRET" not in text and KEY not in text
    await client.aclose()


async def test_abandoned_job_is_cancelled_on_the_endpoint(runpod):
    runpod.hold()
    client = member(runpod)
    events: list[tuple[str, dict]] = []
    task = asyncio.ensure_future(client.run(sdxl_graph(), on_event=lambda k, d: events.append((k, d))))
    while not any(k == "waiting" for k, _ in events):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (job_id,) = runpod.jobs
    assert runpod.cancels == [job_id] and runpod.jobs[job_id].status == "CANCELLED"
    await client.aclose()


async def test_kept_jobs_are_not_cancelled(runpod):
    runpod.hold()
    client = member(runpod)
    ComfyPool([client]).keep_jobs_on_close()
    task = asyncio.ensure_future(client.run(sdxl_graph()))
    while not runpod.jobs:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runpod.cancels == []
    await client.aclose()


async def test_queue_time_has_its_own_limit(runpod):
    runpod.hold()
    t = FakeTime()
    client = member(runpod, t, queue_timeout=30, timeout=5)  # the job's own 5 s would have passed long before
    with pytest.raises(JobTimeoutError) as ei:
        await client.run(sdxl_graph())
    assert "comfy_queue_timeout" in str(ei.value) and "waited" in str(ei.value)
    assert runpod.cancels == list(runpod.jobs)
    assert sum(t.sleeps) > 30 and all(s <= 2.0 for s in t.sleeps)
    await client.aclose()


async def test_failed_jobs_map_to_errors(runpod):
    client = member(runpod)
    with pytest.raises(WorkflowError, match="Workflow validation failed"):
        await client.run({"1": {"class_type": "NoSuchNode", "inputs": {}},
                          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}})
    await client.aclose()


async def test_a_node_failing_on_the_worker_is_a_generation_error_naming_it():
    def failing() -> FakeComfyServer:
        srv = FakeComfyServer()
        srv.accept_any_model = True
        srv.fault("execution_error")
        return srv

    async with FakeRunPod(api_key=KEY, workers=1, comfy_factory=failing) as fake:
        client = member(fake)
        with pytest.raises(GenerationError) as ei:
            await client.run(sdxl_graph())
        await client.aclose()
    assert not isinstance(ei.value, WorkflowError)
    assert "Job processing failed" in str(ei.value) and "Workflow execution error" in str(ei.value)


async def test_resume_re_attaches_while_the_endpoint_keeps_the_job_and_not_after(runpod):
    client = member(runpod)
    try:
        ids: list[str] = []
        first = await client.run(sdxl_graph(), on_submit=lambda i, c: ids.append(i))
        again = await client.resume(ids[0], "runpod")
        assert again is not None and again.prompt_id == first.prompt_id
        assert len(runpod.submitted) == 1
        runpod.expire()
        assert await client.resume(ids[0], "runpod") is None
    finally:
        await client.aclose()


def test_members_from_settings_by_scheme_with_the_key_from_the_environment():
    s = Settings(comfy_urls=["http://gpu:8188", {"url": "runpod://abc123", "concurrency": 8, "price_per_second": 0.0004},
                             "comfyui-api+http://salad:3000"])
    members = members_from_settings(s, env={"RUNPOD_API_KEY": KEY})
    assert [type(m).__name__ for m in members] == ["ComfyClient", "RunPodClient", "ComfyApiClient"]
    rp = members[1]
    assert rp.server == "runpod://abc123" and str(rp._base) == "https://api.runpod.ai/v2/abc123"
    assert rp.concurrency == 8 and rp.price_per_second == 0.0004
    assert KEY not in repr(rp) + rp.server + repr(s) + str(s.public_dict())
    pool = pool_from_settings(s, env={"SCENEFORGE_RUNPOD_API_KEY": KEY})
    assert [srv.depth for srv in pool.servers] == [2, 8, 1]
    assert [srv.price_per_second for srv in pool.servers] == [None, 0.0004, None]
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        members_from_settings(s, env={})


async def test_a_server_and_an_endpoint_in_one_pool_both_work(comfy_server, runpod, tmp_path):
    comfy_server.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
    endpoint = member(runpod)
    pool = ComfyPool([ComfyClient(comfy_server.url), endpoint])
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64, rng=random.Random(1))
    try:
        await backend.start()
        await asyncio.gather(*(backend.generate(ImageRequest(i, f"scene {i}", tmp_path / f"s{i}.png"))
                               for i in range(1, 9)))
    finally:
        await pool.aclose()
    assert comfy_server.prompts and runpod.submitted
    assert len(comfy_server.prompts) + len(runpod.submitted) == 8
    assert all((tmp_path / f"s{i}.png").is_file() for i in range(1, 9))


async def test_a_motion_scene_sends_its_image_and_gets_frames_back(runpod, tmp_path):
    img = tmp_path / "image_scene_1.png"
    Image.new("RGB", (64, 64), (10, 120, 200)).save(img)
    pool = ComfyPool([member(runpod)])
    wan = WanBackend(Workflow.load("wan22-14b-i2v", kind="motion"), pool=pool, length=9, width=64, height=64)
    try:
        res = await wan.generate(MotionRequest(1, img, "pan right", tmp_path / "work"))
    finally:
        await pool.aclose()
    (sent,) = runpod.submitted
    assert [i["name"] for i in sent["images"]] == [upload_name(img)]
    assert base64.b64decode(sent["images"][0]["image"]) == img.read_bytes()
    assert len(res.frames) == 9 and all(f.is_file() for f in res.frames)


async def test_a_scene_waiting_for_a_worker_is_told_then_its_start(runpod, tmp_path):
    runpod.hold()
    events: list[Event] = []
    pool = ComfyPool([member(runpod)])
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64)
    report = bound_reporter(events.append, topic="t", stage="image", scene=4)
    try:
        task = asyncio.ensure_future(backend.generate(ImageRequest(4, "x", tmp_path / "s4.png"), report))
        while not any(e.kind == "job_waiting" for e in events):
            await asyncio.sleep(0.001)
        assert not any(e.kind == "job_started" for e in events)
        runpod.release()
        await task
    finally:
        await pool.aclose()
    kinds = [e.kind for e in events]
    assert kinds.index("job_queued") < kinds.index("job_waiting") < kinds.index("job_started")
    waiting = next(e for e in events if e.kind == "job_waiting")
    assert waiting.scene == 4 and waiting.data["server"] == runpod.member_url


def test_outputs_a_worker_cannot_return():
    from sceneforge.comfy.graphs.outputs import unreturnable_outputs

    vhs = {"1": {"class_type": "VHS_VideoCombine", "inputs": {}}, "2": {"class_type": "PreviewImage", "inputs": {}}}
    (line,) = unreturnable_outputs(vhs, "runpod://abc")
    assert "runpod://abc" in line and "node 1 VHS_VideoCombine" in line and "gifs" in line and "SaveImage" in line
    assert unreturnable_outputs({**vhs, "3": {"class_type": "SaveImage", "inputs": {}}}, "runpod://abc") == []
    assert unreturnable_outputs({"1": {"class_type": "SomeCustomSaver", "inputs": {}}}, "runpod://abc") == []


async def test_an_endpoint_that_does_not_answer_leaves_the_work_to_the_server(comfy_server, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v2/gone"
    comfy_server.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
    endpoint = RunPodClient(dead, server="runpod+" + dead, api_key=KEY)
    pool = ComfyPool([endpoint, ComfyClient(comfy_server.url)])
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64)
    try:
        await backend.start()
        await backend.generate(ImageRequest(1, "x", tmp_path / "s1.png"))
    finally:
        await pool.aclose()
    assert not pool.servers[0].healthy and "runpod+" + dead in pool.servers[0].last_error
    assert len(comfy_server.prompts) == 1


def test_member_options_never_show_a_password():
    s = Settings(comfy_urls=[{"url": "http://u:pw-SECRET@gpu:8188", "price_per_second": 0.001}])
    assert "pw-SECRET" not in str(s.public_dict())
    assert s.comfy_member_options == {"http://u:pw-SECRET@gpu:8188": {"price_per_second": 0.001}}


async def test_a_job_on_an_endpoint_that_stops_answering_moves_to_the_server(comfy_server, runpod, tmp_path):
    comfy_server.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
    runpod.hold()
    endpoint = member(runpod)
    pool = ComfyPool([ComfyClient(comfy_server.url), endpoint])
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64)
    events: list[Event] = []
    try:
        await backend.start()
        jobs = [asyncio.ensure_future(backend.generate(
            ImageRequest(i, f"scene {i}", tmp_path / f"s{i}.png"), bound_reporter(events.append, topic="t", stage="image", scene=i)))
            for i in (1, 2)]
        while not runpod.jobs:
            await asyncio.sleep(0.001)
        runpod.down = True
        await asyncio.gather(*jobs)
    finally:
        await pool.aclose()
    assert len(comfy_server.prompts) == 2 and len(runpod.submitted) == 1  # the endpoint's job moved
    assert not pool.servers[1].healthy
    assert ("POST", f"/v2/ep1/cancel/{next(iter(runpod.jobs))}", 503) in runpod.requests  # it tried not to leave a twin
    assert any(e.kind == "warning" and "moving scene" in e.data["message"] for e in events)


async def test_a_job_over_runpods_request_limit_is_refused_before_sending(runpod, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(2000))
    client = member(runpod)
    client.max_request_bytes = 1000
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": await client.upload_image(big, name="b.png")}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(PermanentError, match="over the .* MB RunPod accepts for /run"):
        await client.run(graph)
    assert runpod.submitted == []
    await client.aclose()
