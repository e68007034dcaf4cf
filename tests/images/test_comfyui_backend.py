"""The ``comfyui`` image backend against the fake server, with the bundled SDXL workflow."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from fakes.comfy_server import FakeComfyServer
from sceneforge.backend import BackendResources
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.graphs.workflow import Workflow
from sceneforge.comfy.pool.pool import ComfyPool
from sceneforge.comfy.pool.servers import pool_from_settings
from sceneforge.config import Settings
from sceneforge.errors import GenerationError, ServerUnavailableError, WorkflowError, error_text
from sceneforge.events import Event, bound_reporter
from sceneforge.images import ImageRequest, image_registry
from sceneforge.images.comfyui import ComfyImageBackend
from sceneforge.retry import is_retryable


def seed_fields(result) -> dict:
    """The asset's fields but its GPU seconds (timing; checked to be there and plausible)."""
    gpu = result.fields.get("gpu_seconds")
    assert gpu is not None and 0 <= gpu < 60, result.fields
    return {k: v for k, v in result.fields.items() if k != "gpu_seconds"}

class Backend(ComfyImageBackend):
    """The backend on a pool of its own, closed with it (the engine shares one pool in a run)."""

    async def aclose(self) -> None:
        await super().aclose()
        await self.pool.aclose()


def backend(srv: FakeComfyServer | str, **kw) -> ComfyImageBackend:
    url = srv if isinstance(srv, str) else srv.url
    kw.setdefault("width", 64)
    kw.setdefault("height", 64)
    return Backend(Workflow.load("sdxl"), pool=ComfyPool([ComfyClient(url)]), **kw)


def req(scene: int, prompt: str, dest: Path) -> ImageRequest:
    return ImageRequest(scene, prompt, dest)


@pytest.fixture
async def sdxl_server(comfy_server):
    comfy_server.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
    return comfy_server


def posted(srv: FakeComfyServer) -> dict:
    return srv.prompts[-1]["prompt"]


async def test_generate_writes_the_image_and_reports_the_seed(sdxl_server, tmp_path):
    events: list[Event] = []
    b = backend(sdxl_server, rng=random.Random(7))
    report = bound_reporter(events.append, topic="t", stage="image", scene=3)
    expected_seed = Workflow.load("sdxl").prepare_image("x", rng=random.Random(7))[1]
    try:
        await b.start()
        result = await b.generate(req(3, "a red fox in the snow", tmp_path / "image_scene_3.png"), report)
    finally:
        await b.aclose()
    assert result.path == tmp_path / "image_scene_3.png" and seed_fields(result) == {"image_seed": expected_seed}
    with Image.open(result.path) as im:
        assert im.size == (64, 64)
    g = posted(sdxl_server)
    assert g["6"]["inputs"]["text"] == "a red fox in the snow"
    assert g["3"]["inputs"]["seed"] == expected_seed
    assert g["9"]["inputs"]["filename_prefix"] == "sceneforge/scene_3"
    assert (g["5"]["inputs"]["width"], g["5"]["inputs"]["height"]) == (64, 64)
    queued = [e for e in events if e.kind == "job_queued"]
    assert len(queued) == 1 and (queued[0].topic, queued[0].stage, queued[0].scene) == ("t", "image", 3)
    assert queued[0].data == {"server": sdxl_server.url, "prompt_id": sdxl_server.jobs[0]["prompt_id"]}
    assert any(e.kind == "job_progress" for e in events)  # KSampler steps
    assert not list(tmp_path.glob(".*.part"))


async def test_prompts_make_different_images_and_seeds_vary(sdxl_server, tmp_path):
    b = backend(sdxl_server, rng=random.Random(1))
    try:
        r1 = await b.generate(req(1, "a lighthouse", tmp_path / "1.png"))
        r2 = await b.generate(req(2, "a forest", tmp_path / "2.png"))
    finally:
        await b.aclose()
    assert r1.fields["image_seed"] != r2.fields["image_seed"]
    assert (tmp_path / "1.png").read_bytes() != (tmp_path / "2.png").read_bytes()


async def test_fixed_seed_and_fingerprint(sdxl_server, tmp_path):
    b = backend(sdxl_server, seed=42, negative="blurry")
    try:
        r = await b.generate(req(1, "a cat", tmp_path / "1.png"))
        assert seed_fields(r) == {"image_seed": 42}
        pinned = await b.generate(ImageRequest(2, "a cat", tmp_path / "2.png", seed=9, negative="dark"))
    finally:
        await b.aclose()
    assert seed_fields(pinned) == {"image_seed": 9} and posted(sdxl_server)["7"]["inputs"]["text"] == "dark"
    assert sdxl_server.prompts[-2]["prompt"]["7"]["inputs"]["text"] == "blurry"
    fp = b.fingerprint()
    assert fp["seed"] == 42 and fp["workflow"] == Workflow.load("sdxl").digest and fp["negative"] == "blurry"
    assert backend(sdxl_server).fingerprint()["seed"] == "random"
    assert backend(sdxl_server).fingerprint() == backend("http://other:1").fingerprint()  # not the server
    assert backend(sdxl_server, width=128).fingerprint() != backend(sdxl_server).fingerprint()
    assert backend(sdxl_server, prompt_node="6").fingerprint() != backend(sdxl_server).fingerprint()


async def test_start_checks_health_once(sdxl_server, dead_url):
    b = backend(sdxl_server)
    await b.start()
    await b.start()
    await b.aclose()
    assert sum(r["path"] == "/system_stats" for r in sdxl_server.requests) == 1
    down = backend(dead_url)
    with pytest.raises(ServerUnavailableError, match=dead_url):
        await down.start()
    await down.aclose()


async def test_from_settings_and_registry(sdxl_server, tmp_path):
    sdxl_server.require_headers = {"X-Token": "tok-secret"}
    s = Settings(comfy_urls=(sdxl_server.url,), comfy_headers={"X-Token": "tok-secret"}, workflow="sdxl",
                 width=64, height=64, seed=5, comfy_timeout=30)
    cls = image_registry.get("comfyui")
    assert cls is ComfyImageBackend
    pool = pool_from_settings(s)
    b = cls.from_settings(s, BackendResources(pool))
    try:
        await b.start()
        r = await b.generate(req(1, "a boat", tmp_path / "1.png"))
    finally:
        await b.aclose()
        await pool.aclose()
    assert seed_fields(r) == {"image_seed": 5} and b.pool is pool and pool.servers[0].client.timeout == 30
    assert all(req["headers"].get("X-Token") == "tok-secret" for req in sdxl_server.requests)


async def test_missing_model_is_a_workflow_error(comfy_server, tmp_path):
    b = backend(comfy_server)
    try:
        with pytest.raises(WorkflowError, match="ckpt_name: 'sd_xl_base_1.0.safetensors' not in \\[\\]") as ei:
            await b.generate(req(1, "a cat", tmp_path / "1.png"))
    finally:
        await b.aclose()
    assert not is_retryable(ei.value) and not (tmp_path / "1.png").exists()


async def test_runtime_failure_names_the_scene(sdxl_server, tmp_path):
    sdxl_server.fault("execution_error", times=1, node="3", exception_type="torch.OutOfMemoryError",
                      exception_message="CUDA out of memory")
    b = backend(sdxl_server)
    try:
        with pytest.raises(GenerationError, match="node 3 KSampler: torch.OutOfMemoryError") as ei:
            await b.generate(req(4, "a cat", tmp_path / "4.png"))
        assert ei.value.node_id == "3" and is_retryable(ei.value) and "CUDA out of memory" in error_text(ei.value)
        # ...and the next attempt (the stage's retry) works with the same backend.
        await b.generate(req(4, "a cat", tmp_path / "4.png"))
    finally:
        await b.aclose()
    assert (tmp_path / "4.png").is_file()


async def test_no_image_output_is_a_workflow_error(sdxl_server, tmp_path):
    sdxl_server.outputs_for = lambda graph: {"9": {}}
    b = backend(sdxl_server)
    try:
        with pytest.raises(WorkflowError, match="scene 1: .*produced no image"):
            await b.generate(req(1, "a cat", tmp_path / "1.png"))
    finally:
        await b.aclose()


async def test_the_backend_uses_the_lent_pool_and_leaves_it_open(sdxl_server, tmp_path):
    client = ComfyClient(sdxl_server.url, timeout=10)
    pool = ComfyPool([client])
    b = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64)
    await b.generate(req(1, "a cat", Path(tmp_path / "1.png")))
    await b.aclose()
    assert client._session is not None and not client._session.closed  # the pool's owner closes it
    await pool.aclose()
    assert client._session is None


def test_a_backend_without_a_pool_says_so():
    from sceneforge.errors import ConfigError

    b = ComfyImageBackend(Workflow.load("sdxl"))
    with pytest.raises(ConfigError, match="without a ComfyUI server pool"):
        _ = b.pool
