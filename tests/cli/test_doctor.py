"""``sceneforge doctor`` against the fake ComfyUI server: versions, devices, workflows, models, secrets."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app
from sceneforge.cli.doctor import render_report, run_doctor
from sceneforge.config import Settings
from sceneforge.doctor import DoctorReport, ServerFacts, _server_checks, model_folders
from sceneforge.workflows import read_bundled

runner = CliRunner()

SDXL_CKPT = "sd_xl_base_1.0.safetensors"
WAN_FILES = {
    "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": "diffusion_models",
    "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors": "diffusion_models",
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors": "text_encoders",
    "wan_2.1_vae.safetensors": "vae",
}


@pytest.fixture(scope="module")
def srv() -> Iterator[FakeComfyServer]:
    """One fake server in its own thread for the module (the CLI runs its own event loop)."""
    with FakeComfyServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(srv: FakeComfyServer) -> Iterator[None]:
    saved = copy.deepcopy(srv.models)
    yield
    srv.models.clear()
    srv.models.update(saved)
    srv.require_basic_auth = None
    srv.require_headers = {}


def doctor(*args: str, env: dict[str, str] | None = None):
    # espeak narration: the default (edge) would ask Microsoft's voice list, which a test cannot reach.
    result = runner.invoke(app, ["doctor", *args], env={"SCENEFORGE_TTS": "espeak", **(env or {})},
                           catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def test_healthy_server_all_good(srv: FakeComfyServer) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    r = doctor("--comfy-url", srv.url, "--workflow", "sdxl")
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"ComfyUI {srv.url}" in out
    assert "ComfyUI 0.33.0" in out and "Python 3.11.7" in out and "PyTorch 2.13.0+cpu" in out
    assert "device cpu (cpu)" in out
    assert "queue: 0 running, 0 pending" in out
    assert "✗" not in out
    assert out.strip().splitlines()[-1].endswith("all good")


def test_missing_checkpoint_named(srv: FakeComfyServer) -> None:
    r = doctor("--comfy-url", srv.url, "--workflow", "sdxl")
    assert r.exit_code == 1, r.output
    assert f"{SDXL_CKPT}  (in models/checkpoints/)" in r.output
    assert r.output.strip().splitlines()[-1].endswith("1 problem")


def test_missing_wan_models_each_named_with_folder(srv: FakeComfyServer) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    srv.models["vae"] = ["wan_2.1_vae.safetensors"]  # one of them is there
    r = doctor("--comfy-url", srv.url, "--motion-workflow", "wan22-14b-i2v")
    assert r.exit_code == 1, r.output
    for name, folder in WAN_FILES.items():
        if name == "wan_2.1_vae.safetensors":
            assert name not in r.output
        else:
            assert f"{name}  (in models/{folder}/)" in r.output
    assert "motion workflow wan22-14b-i2v: 3 model file(s) missing" in r.output
    assert "image workflow sdxl: model files present" in r.output
    assert r.output.strip().splitlines()[-1].endswith("3 problems")


def test_wan_all_present_is_good(srv: FakeComfyServer) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    for name, folder in WAN_FILES.items():
        srv.models[folder] = [*srv.models[folder], name]
    r = doctor("--comfy-url", srv.url, "--motion-workflow", "wan22-14b-i2v")
    assert r.exit_code == 0, r.output
    assert "motion workflow wan22-14b-i2v: model files present" in r.output


def test_dead_server_clean_message(srv: FakeComfyServer, dead_url: str) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    r = doctor("--comfy-url", dead_url, "--comfy-url", srv.url)
    assert r.exit_code == 1, r.output
    assert f"ComfyUI {dead_url}" in r.output
    assert "connection refused" in r.output
    assert "ComfyUI 0.33.0" in r.output  # the live server is still reported
    assert r.output.strip().splitlines()[-1].endswith("1 problem")


def test_unknown_node_type_reported_by_id_and_class(srv: FakeComfyServer, tmp_path: Path) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    graph = json.loads(read_bundled("sdxl"))
    graph["99"] = {"class_type": "FancyUpscalerXL", "inputs": {"image": ["8", 0]}}
    wf = tmp_path / "custom.json"
    wf.write_text(json.dumps(graph), encoding="utf-8")
    r = doctor("--comfy-url", srv.url, "--workflow", str(wf))
    assert r.exit_code == 1, r.output
    assert "node 99 (FancyUpscalerXL): unknown node type 'FancyUpscalerXL'" in r.output


def test_out_of_range_and_missing_input(srv: FakeComfyServer, tmp_path: Path) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    graph = json.loads(read_bundled("sdxl"))
    sampler = next(nid for nid, n in graph.items() if n["class_type"] == "KSampler")
    graph[sampler]["inputs"]["steps"] = 0
    del graph[sampler]["inputs"]["cfg"]
    wf = tmp_path / "bad.json"
    wf.write_text(json.dumps(graph), encoding="utf-8")
    r = doctor("--comfy-url", srv.url, "--workflow", str(wf))
    assert r.exit_code == 1, r.output
    assert f"node {sampler} (KSampler): input 'steps' is 0, below the minimum" in r.output
    assert f"node {sampler} (KSampler): required input 'cfg' is missing" in r.output


def test_unloadable_workflow_is_a_problem_not_a_crash(srv: FakeComfyServer) -> None:
    r = doctor("--comfy-url", srv.url, "--workflow", "no-such-workflow")
    assert r.exit_code == 1, r.output
    assert "image workflow no-such-workflow" in r.output
    assert "ComfyUI 0.33.0" in r.output


def test_secrets_never_printed(srv: FakeComfyServer, dead_url: str) -> None:
    srv.models["checkpoints"] = [SDXL_CKPT]
    srv.require_basic_auth = ("bob", "hunter2-very-secret")
    srv.require_headers = {"X-Token": "tok-abc123xyz"}
    live = srv.url.replace("http://", "http://bob:hunter2-very-secret@")
    dead = dead_url.replace("http://", "http://bob:dead-pass-9876@")
    r = doctor("--comfy-url", live, "--comfy-url", dead, env={"SCENEFORGE_COMFY_HEADERS": "X-Token: tok-abc123xyz"})
    assert r.exit_code == 1, r.output  # the dead one
    assert "ComfyUI 0.33.0" in r.output  # the credentials did reach the live server
    for secret in ("hunter2-very-secret", "dead-pass-9876", "tok-abc123xyz"):
        assert secret not in r.output
    assert "http://***@127.0.0.1" in r.output


def test_wrong_credentials_reported_cleanly(srv: FakeComfyServer) -> None:
    srv.require_basic_auth = ("bob", "right-password")
    r = doctor("--comfy-url", srv.url.replace("http://", "http://bob:wrong-password@"))
    assert r.exit_code == 1, r.output
    assert "401" in r.output
    assert "wrong-password" not in r.output


async def test_espeak_narration_checked(tmp_path: Path) -> None:
    async with FakeComfyServer() as server:
        server.models["checkpoints"] = [SDXL_CKPT]
        console = Console(record=True, width=200, file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
        try:
            ok = await run_doctor(Settings(comfy_urls=(server.url,), tts="espeak"), console)
        finally:
            console.file.close()
    text = console.export_text()
    assert ok, text
    assert "Narration: espeak" in text and "libespeak-ng loads" in text


def test_model_folders_from_loader_class() -> None:
    graph = json.loads(read_bundled("wan22-14b-i2v-4step"))
    folders = model_folders(graph)
    for name, folder in WAN_FILES.items():
        assert folders[name] == folder
    assert {f for n, f in folders.items() if "lora" in n} == {"loras"}
    assert "default" not in folders and "wan" not in folders
    assert model_folders(json.loads(read_bundled("sdxl"))) == {SDXL_CKPT: "checkpoints"}


def test_gpu_device_vram_in_gib() -> None:
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    stats = {
        "system": {"comfyui_version": "0.3.60", "python_version": "3.12.3 (main, ...) [GCC 13.2.0]",
                   "pytorch_version": "2.8.0+cu128"},
        "devices": [{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "type": "cuda",
                     "vram_total": 24 * 1024**3, "vram_free": int(20.5 * 1024**3)}],
    }
    server = _server_checks(ServerFacts("http://gpu:8188", stats=stats, queue=(1, 3)), [])
    report = DoctorReport(healthy=server.healthy, problems=sum(len(c.problems) for c in server.checks),
                          image_engine="comfyui", motion_engine=None, narration_engine="espeak", servers=[server])
    render_report(report, console)
    console.file.close()
    text = console.export_text()
    assert "Python 3.12.3, PyTorch 2.8.0+cu128" in text
    assert "NVIDIA GeForce RTX 4090 : cudaMallocAsync (cuda): VRAM 24.0 GiB total, 20.5 GiB free" in text
    assert "queue: 1 running, 3 pending" in text
    assert report.problems == 0


def test_the_consistency_workflow_names_each_missing_model_file(srv: FakeComfyServer) -> None:
    srv.models["vae"] = ["ae.safetensors"]
    r = doctor("--comfy-url", srv.url, "--workflow", "flux-kontext")
    assert r.exit_code == 1, r.output
    for name, folder in (("flux1-dev-kontext_fp8_scaled.safetensors", "diffusion_models"),
                         ("clip_l.safetensors", "text_encoders"),
                         ("t5xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders")):
        assert f"{name}  (in models/{folder}/)" in r.output
    assert "ae.safetensors  (in" not in r.output
    assert "image workflow flux-kontext: 3 model file(s) missing" in r.output


def test_text_and_json_agree_on_the_exit_code_offline() -> None:
    """Offline nothing runs on ComfyUI: neither the text nor the JSON report probes the (dead) server."""
    env = {"SCENEFORGE_OFFLINE": "1"}
    text = doctor("--comfy-url", "http://127.0.0.1:9", env=env)
    as_json = doctor("--json", "--comfy-url", "http://127.0.0.1:9", env=env)
    assert json.loads(as_json.stdout)["healthy"] is True
    assert text.exit_code == as_json.exit_code == 0, text.output


async def test_offline_text_report_is_healthy(tmp_path: Path) -> None:
    console = Console(record=True, width=200, file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    try:
        ok = await run_doctor(Settings(offline=True, comfy_urls=("http://127.0.0.1:9",)), console)
    finally:
        console.file.close()
    assert ok, console.export_text()
    assert "127.0.0.1:9" not in console.export_text()
