"""comfyui-api (SaladTechnologies) as a pool member, against the fake (``fakes/comfyui_api.py``)."""

from __future__ import annotations

import base64
import random
import sys
from pathlib import Path

import pytest
from PIL import Image

from fakes.comfyui_api import FakeComfyApi
from sceneforge.comfy.endpoints.comfyui_api import ComfyApiClient
from sceneforge.comfy.graphs.workflow import Workflow
from sceneforge.comfy.pool.pool import ComfyPool
from sceneforge.errors import DownloadError, ServerUnavailableError, WorkflowError
from sceneforge.images import ImageRequest
from sceneforge.images.comfyui import ComfyImageBackend
from sceneforge.motion import MotionRequest
from sceneforge.motion.wan import WanBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "motion"))
from motion_helpers import make_video  # noqa: E402


@pytest.fixture
async def api(comfy_server):
    comfy_server.accept_any_model = True
    async with FakeComfyApi(comfy_server) as fake:
        yield fake


def member(fake: FakeComfyApi) -> ComfyApiClient:
    return ComfyApiClient(fake.member_url.removeprefix("comfyui-api+"), server=fake.member_url)


async def test_an_image_scene_runs_through_comfyui_api(api, tmp_path):
    pool = ComfyPool([member(api)])
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64, rng=random.Random(3))
    try:
        await backend.start()
        res = await backend.generate(ImageRequest(1, "a lighthouse", tmp_path / "s1.png"))
    finally:
        await pool.aclose()
    with Image.open(res.path) as im:
        assert im.size == (64, 64)
    assert res.fields["gpu_seconds"] >= 0
    (body,) = api.prompts
    assert set(body) == {"id", "prompt"}


async def test_the_scene_image_travels_as_base64_and_a_vhs_video_comes_back(api, comfy_server, tmp_path):
    img = tmp_path / "image_scene_2.png"
    Image.new("RGB", (64, 64), (90, 40, 10)).save(img)
    video = make_video(tmp_path / "clip.mp4").read_bytes()

    def outputs(graph: dict) -> dict:  # a VideoHelperSuite-style output: the video under "gifs" only
        out: dict = {nid: {} for nid, n in graph.items() if n["class_type"] in ("SaveImage", "SaveVideo")}
        last = next(iter(out))
        out[last] = {"gifs": comfy_server.save_outputs("sceneforge/motion_2", [video], "mp4")}
        return out

    comfy_server.outputs_for = outputs
    pool = ComfyPool([member(api)])
    wan = WanBackend(Workflow.load("wan22-14b-i2v", kind="motion"), pool=pool, length=9, width=64, height=64)
    try:
        res = await wan.generate(MotionRequest(2, img, "pan", tmp_path / "work"))
    finally:
        await pool.aclose()
    sent = api.prompts[0]["prompt"]
    loads = [n["inputs"]["image"] for n in sent.values() if n["class_type"] == "LoadImage"]
    assert [base64.b64decode(x) for x in loads] == [img.read_bytes()]
    assert res.video is not None and res.video.suffix == ".mp4" and len(res.frames) == 9


async def test_not_ready_is_down_and_a_refused_graph_is_a_workflow_error(api):
    client = member(api)
    api.ready = False
    with pytest.raises(ServerUnavailableError, match="not ready"):
        await client.system_stats()
    api.ready = True
    assert (await client.system_stats())["ready"]["status"] == "ready"
    with pytest.raises(WorkflowError, match="filename_prefix"):
        await client.run({"1": {"class_type": "EmptyImage", "inputs": {}}})
    assert await client.resume("any", "comfyui-api") is None  # it keeps no jobs
    await client.aclose()


async def test_a_bad_output_names_the_endpoint_not_view(tmp_path):
    client = ComfyApiClient("http://h:1", server="comfyui-api+http://h:1")
    ref = {"filename": "x.png", "transport": "base64", "data": base64.b64encode(b"<html>not a png</html>").decode()}
    with pytest.raises(DownloadError) as info:
        await client.download(ref, tmp_path / "x.png")
    msg = str(info.value)
    assert msg.startswith("comfyui-api+http://h:1 gave x.png") and "not a valid image" in msg
    assert "/view" not in msg and "ComfyUI at" not in msg
    assert not (tmp_path / "x.png").exists()


def test_a_duration_past_any_float_is_dropped_not_a_crash():
    client = ComfyApiClient("http://h:1", server="comfyui-api+http://h:1")
    answer = {"images": [], "filenames": [], "stats": {"comfy_execution": {"total": {"duration": 10**400}}}}
    assert client._result("j", answer).gpu_seconds is None
    answer["stats"]["comfy_execution"]["total"]["duration"] = 1500
    assert client._result("j", answer).gpu_seconds == 1.5


async def test_inlined_inputs_leave_the_callers_graph_as_it_is(tmp_path):
    client = ComfyApiClient("http://h:1", server="comfyui-api+http://h:1")
    (tmp_path / "a.png").write_bytes(b"png-bytes")
    name = await client.upload_image(tmp_path / "a.png", name="ref.png")
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
             "2": {"class_type": "LoadImage", "inputs": {"image": name}}, "3": {"class_type": "X", "inputs": {}}}
    out = client._inline(graph)
    assert out["1"]["inputs"]["image"] == out["2"]["inputs"]["image"] == base64.b64encode(b"png-bytes").decode()
    assert graph["1"]["inputs"]["image"] == "ref.png" and out["3"] is graph["3"]
