"""The ``wan`` motion backend (WanBackend, also exported as MotionGenerator) against the fake ComfyUI server."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from motion_helpers import make_image, make_video, video_only
from PIL import Image

from fakes.comfy_server import FakeComfyServer
from sceneforge.backend import BackendResources
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.graphs.workflow import Workflow
from sceneforge.comfy.pool.pool import ComfyPool
from sceneforge.config import Settings
from sceneforge.errors import ConfigError, DownloadError, GenerationError, WorkflowError
from sceneforge.events import Event, bound_reporter
from sceneforge.motion import MotionRequest, motion_registry
from sceneforge.motion.wan import WanBackend, extract_frames, upload_name
from sceneforge.retry import is_retryable


def seed_fields(result) -> dict:
    """The asset's fields but its GPU seconds (timing; checked to be there and plausible)."""
    gpu = result.fields.get("gpu_seconds")
    assert gpu is not None and 0 <= gpu < 60, result.fields
    return {k: v for k, v in result.fields.items() if k != "gpu_seconds"}

class Wan(WanBackend):
    """The backend on a pool of its own, closed with it (the engine shares one pool in a run)."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.pool.aclose()


def wan(srv: FakeComfyServer | str, workflow: str = "wan22-14b-i2v", **kw) -> WanBackend:
    url = srv if isinstance(srv, str) else srv.url
    kw.setdefault("length", 9)
    kw.setdefault("width", 64)
    kw.setdefault("height", 64)
    return Wan(Workflow.load(workflow, kind="motion"), pool=ComfyPool([ComfyClient(url)]), **kw)


def reporter(events: list[Event], scene: int):
    return bound_reporter(events.append, topic="t", stage="motion", scene=scene)


NONE = BackendResources.none()


def posted(srv: FakeComfyServer, i: int = -1) -> dict:
    return srv.prompts[i]["prompt"]


def by_class(graph: dict, cls: str) -> list[dict]:
    return [n["inputs"] for n in graph.values() if n["class_type"] == cls]


async def test_upload_injection_and_frames(wan_server, tmp_path):
    img = make_image(tmp_path / "image_scene_2.png")
    events: list[Event] = []
    b = wan(wan_server, rng=random.Random(7))
    try:
        await b.start()
        res = await b.generate(MotionRequest(2, img, "the camera slowly pans right", tmp_path / "work"),
                               reporter(events, 2))
    finally:
        await b.aclose()

    name = f"sceneforge_{hashlib.sha256(img.read_bytes()).hexdigest()[:16]}.png"
    assert name == upload_name(img)
    assert wan_server.store.get("input", "", name) == img.read_bytes()  # uploaded under the content name
    g = posted(wan_server)
    assert g["97"]["inputs"]["image"] == name  # LoadImage takes the uploaded file
    assert g["93"]["inputs"]["text"] == "the camera slowly pans right"  # positive, not the negative
    assert g["89"]["inputs"]["text"] != g["93"]["inputs"]["text"]
    seed = res.fields["motion_seed"]
    assert seed_fields(res) == {"motion_seed": seed}
    assert {i["noise_seed"] for i in by_class(g, "KSamplerAdvanced")} == {seed}
    assert seed == random.Random(7).randrange(2**32)
    latent = g["98"]["inputs"]
    assert (latent["width"], latent["height"], latent["length"]) == (64, 64, 9)
    assert {i["filename_prefix"] for i in by_class(g, "SaveImage") + by_class(g, "SaveVideo")} == {"sceneforge/motion_2"}

    assert [f.name for f in res.frames] == [f"frame_{i:04d}.png" for i in range(1, 10)]
    assert all(f.parent == tmp_path / "work" for f in res.frames)
    with Image.open(res.frames[0]) as im:
        assert im.format == "PNG" and im.size == (64, 64)
    assert res.frames[0].read_bytes() != res.frames[-1].read_bytes()
    assert res.fps == 16.0
    # the workflow saves a video as well: the frames are used, the video kept
    assert res.video == tmp_path / "work" / "motion.mp4" and res.video.is_file()
    assert not list((tmp_path / "work").glob(".*"))  # no temporary files

    queued = [e for e in events if e.kind == "job_queued"]
    assert len(queued) == 1 and (queued[0].topic, queued[0].stage, queued[0].scene) == ("t", "motion", 2)
    assert queued[0].data == {"server": wan_server.url, "prompt_id": wan_server.jobs[0]["prompt_id"]}
    assert any(e.kind == "job_progress" and e.stage == "motion" for e in events)  # KSampler steps


async def test_identical_images_share_one_upload_and_different_ones_do_not_collide(wan_server, tmp_path):
    a = make_image(tmp_path / "topic_a" / "image_scene_1.png", (1, 2, 3))
    a2 = make_image(tmp_path / "topic_b" / "image_scene_1.png", (1, 2, 3))
    c = make_image(tmp_path / "topic_c" / "image_scene_1.png", (9, 9, 9))
    b = wan(wan_server, seed=5)
    try:
        for img in (a, a2, c):
            await b.generate(MotionRequest(1, img, "zoom", img.parent / "work"))  # each topic folder has its own job journal
    finally:
        await b.aclose()
    names = [posted(wan_server, i)["97"]["inputs"]["image"] for i in range(3)]
    assert names[0] == names[1] != names[2]
    assert sorted(n for (t, _, n) in wan_server.store.files if t == "input" and n.startswith("sceneforge_")) == sorted(set(names))


async def test_fixed_seed_motion_fps_and_fingerprint(wan_server, tmp_path):
    img = make_image(tmp_path / "i.png")
    b = wan(wan_server, seed=42, fps=12.0)
    try:
        res = await b.generate(MotionRequest(1, img, "drift", tmp_path / "w"))
    finally:
        await b.aclose()
    g = posted(wan_server)
    assert seed_fields(res) == {"motion_seed": 42} and res.fps == 12.0
    assert by_class(g, "CreateVideo")[0]["fps"] == 12.0  # the server's video runs at the recorded rate
    fp = b.fingerprint()
    assert fp == {"backend": "wan", "workflow": Workflow.load("wan22-14b-i2v", kind="motion").digest, "seed": 42,
                  "length": 9, "width": 64, "height": 64, "fps": 12.0, "prompt_node": None, "image_node": None}
    assert wan(wan_server, seed=None).fingerprint()["seed"] == "random"
    assert wan(wan_server, seed=None).fingerprint()["fps"] == 16.0
    assert wan(wan_server, length=13).fingerprint() != wan(wan_server).fingerprint()
    assert wan(wan_server, workflow="wan22-14b-i2v-4step").fingerprint() != wan(wan_server).fingerprint()


def test_fps_and_length_come_from_the_workflow():
    b14 = wan("http://127.0.0.1:1", length=None, width=None, height=None)
    b5 = wan("http://127.0.0.1:1", "wan22-5b-ti2v", length=None, width=None, height=None)
    assert (b14.fps, b14.length) == (16.0, 81)
    assert (b5.fps, b5.length) == (24.0, 121)
    s = Settings(motion_workflow="wan22-5b-ti2v", motion_fps=30)
    assert WanBackend.from_settings(s, NONE).fps == 30.0


def test_bad_length_or_size_is_a_config_error_before_any_job():
    with pytest.raises(ConfigError, match=r"motion length 10 is not 4k\+1.*use 9 or 13"):
        WanBackend.from_settings(Settings(motion_length=10), NONE)
    with pytest.raises(ConfigError, match="multiple of 16"):
        WanBackend.from_settings(Settings(motion_width=100), NONE)
    with pytest.raises(WorkflowError, match="no node titled or numbered 'nope'"):
        WanBackend.from_settings(Settings(motion_image_node="nope"), NONE)
    with pytest.raises(WorkflowError, match="is a image workflow, not motion"):
        WanBackend.from_settings(Settings(motion_workflow="sdxl"), NONE)


def test_motion_generator_is_the_wan_backend_under_its_spec_name():
    import sceneforge.motion.wan as wan_module

    assert wan_module.MotionGenerator is WanBackend
    assert "MotionGenerator" in wan_module.__all__


async def test_from_settings_uses_the_lent_pool():
    assert motion_registry.get("wan") is WanBackend
    s = Settings(motion_length=9, comfy_urls=("http://127.0.0.1:1",))
    pool = ComfyPool([ComfyClient("http://127.0.0.1:1")])
    shared = WanBackend.from_settings(s, BackendResources(pool))
    assert shared.pool is pool
    await shared.aclose()
    await pool.aclose()


async def test_video_only_workflow_is_turned_into_frames(wan_server, tmp_path, small_mp4):
    wan_server.outputs_for = video_only(wan_server, small_mp4)
    img = make_image(tmp_path / "i.png")
    events: list[Event] = []
    b = wan(wan_server)
    try:
        res = await b.generate(MotionRequest(1, img, "pan", tmp_path / "w"), reporter(events, 1))
    finally:
        await b.aclose()
    assert [f.name for f in res.frames] == [f"frame_{i:04d}.png" for i in range(1, 10)]
    with Image.open(res.frames[4]) as im:
        assert im.format == "PNG" and im.size == (64, 64)
    assert res.video == tmp_path / "w" / "motion.mp4" and res.video.read_bytes() == small_mp4
    assert res.fps == 16.0  # the configured rate; the video's 8 fps is reported as a warning
    assert any(e.kind == "warning" and "8 fps" in e.data["message"] for e in events)


async def test_webm_and_animated_webp_outputs(wan_server, tmp_path):
    webm = make_video(tmp_path / "c.webm", frames=5, codec="libvpx-vp9").read_bytes()
    wan_server.outputs_for = video_only(wan_server, webm, "webm")
    img = make_image(tmp_path / "i.png")
    b = wan(wan_server)
    try:
        res = await b.generate(MotionRequest(1, img, "pan", tmp_path / "w1"))
        assert len(res.frames) == 5 and res.video == tmp_path / "w1" / "motion.webm"

        frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(3)]
        buf = io.BytesIO()
        frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=125, lossless=True)
        wan_server.outputs_for = video_only(wan_server, buf.getvalue(), "webp")
        res = await b.generate(MotionRequest(1, img, "pan", tmp_path / "other" / "w2"))  # another topic folder: its own journal
    finally:
        await b.aclose()
    assert len(res.frames) == 3 and res.video is None  # an animated image is not kept as a video
    assert sorted(p.name for p in (tmp_path / "other" / "w2").iterdir()) == ["frame_0001.png", "frame_0002.png", "frame_0003.png"]
    with Image.open(res.frames[2]) as im:
        assert im.getpixel((5, 5))[0] == 120


async def test_undecodable_video_is_a_generation_error(tmp_path):
    bad = tmp_path / "v.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom not really a video")
    (tmp_path / "w").mkdir()
    with pytest.raises(GenerationError, match="could not extract frames from v.mp4"):
        await extract_frames(bad, tmp_path / "w")
    assert not list((tmp_path / "w").iterdir())


async def test_truncated_frame_is_a_download_error_and_the_retry_reuses_the_seed(wan_server, tmp_path):
    img = make_image(tmp_path / "i.png")
    wan_server.fault("view_truncated", times=1)
    b = wan(wan_server)
    try:
        with pytest.raises(DownloadError) as info:
            await b.generate(MotionRequest(3, img, "pan", tmp_path / "w"))
        assert is_retryable(info.value)
        assert not list((tmp_path / "w").iterdir())  # no partial frame, no temporary file
        res = await b.generate(MotionRequest(3, img, "pan", tmp_path / "w"))
        third = await b.generate(MotionRequest(3, img, "pan", tmp_path / "other" / "w3"))
    finally:
        await b.aclose()
    # The retry re-reads the finished job from the journal: it is not submitted again.
    assert len(wan_server.prompts) == 2
    seeds = [posted(wan_server, i)["86"]["inputs"]["noise_seed"] for i in range(2)]
    assert seeds[0] == res.fields["motion_seed"]
    assert seeds[1] != seeds[0] and third.fields["motion_seed"] == seeds[1]  # a new clip gets a new seed
    assert len(res.frames) == 9


async def test_upload_rejected_is_not_retried_and_nothing_is_submitted(wan_server, tmp_path):
    wan_server.fault("upload_400", times=1)
    b = wan(wan_server)
    try:
        with pytest.raises(GenerationError, match="rejected the upload") as info:
            await b.generate(MotionRequest(1, make_image(tmp_path / "i.png"), "pan", tmp_path / "w"))
    finally:
        await b.aclose()
    assert not is_retryable(info.value)
    assert wan_server.prompts == []


async def test_execution_error_is_a_generation_error(wan_server, tmp_path):
    wan_server.fault("execution_error", times=1, node="98", exception_type="torch.OutOfMemoryError",
                     exception_message="CUDA out of memory")
    b = wan(wan_server)
    try:
        with pytest.raises(GenerationError, match="out of memory") as info:
            await b.generate(MotionRequest(1, make_image(tmp_path / "i.png"), "pan", tmp_path / "w"))
    finally:
        await b.aclose()
    assert info.value.node_id == "98"
    assert not list((tmp_path / "w").iterdir())


async def test_missing_image_is_reported_without_a_job(wan_server, tmp_path):
    b = wan(wan_server)
    try:
        with pytest.raises(FileNotFoundError, match="scene 4"):
            await b.generate(MotionRequest(4, tmp_path / "nope.png", "pan", tmp_path / "w"))
    finally:
        await b.aclose()
    assert wan_server.prompts == [] and not any("/upload" in r.get("path", "") for r in wan_server.requests)


async def test_workflow_without_frames_or_video(wan_server, tmp_path):
    wan_server.outputs_for = lambda graph: {nid: {} for nid, n in graph.items() if n["class_type"].startswith("Save")}
    b = wan(wan_server)
    try:
        with pytest.raises(WorkflowError, match="produced no frames and no video"):
            await b.generate(MotionRequest(1, make_image(tmp_path / "i.png"), "pan", tmp_path / "w"))
    finally:
        await b.aclose()


async def test_5b_workflow_injection(wan_server, tmp_path):
    b = wan(wan_server, "wan22-5b-ti2v", width=64, height=64, length=5)
    try:
        res = await b.generate(MotionRequest(1, make_image(tmp_path / "i.png"), "a train", tmp_path / "w"))
    finally:
        await b.aclose()
    g = posted(wan_server)
    latent = by_class(g, "Wan22ImageToVideoLatent")[0]
    assert (latent["width"], latent["height"], latent["length"]) == (64, 64, 5)
    assert g["56"]["inputs"]["image"] == upload_name(tmp_path / "i.png")
    assert g["6"]["inputs"]["text"] == "a train"
    assert res.fps == 24.0 and len(res.frames) == 5
