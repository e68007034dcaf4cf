"""``doctor`` with serverless endpoints in the pool: their health, what cannot be checked there, and
whether the workflows' outputs can come back from a RunPod worker; the key is never shown."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from fakes.comfy_server import FakeComfyServer
from fakes.comfyui_api import FakeComfyApi
from fakes.runpod import FakeRunPod
from sceneforge.cli.doctor import run_doctor
from sceneforge.config import Settings

KEY = "rpa-DOCTOR-secret"
WORKFLOWS = Path(__file__).resolve().parents[2] / "src" / "sceneforge" / "workflows"


def vhs_workflow(tmp_path: Path) -> Path:
    graph = json.loads((WORKFLOWS / "wan22-14b-i2v.json").read_text())
    for nid in [n for n, node in graph.items() if node["class_type"] in ("SaveImage", "SaveVideo", "CreateVideo")]:
        del graph[nid]
    graph["300"] = {"class_type": "VHS_VideoCombine", "inputs": {"images": ["87", 0], "frame_rate": 16,
                                                                   "filename_prefix": "vhs", "format": "video/h264-mp4"}}
    path = tmp_path / "vhs.json"
    path.write_text(json.dumps(graph))
    return path


async def test_endpoints_report_health_limits_and_unreturnable_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    comfy = await FakeComfyServer().start()
    try:
        async with FakeRunPod(api_key=KEY, workers=2) as rp, FakeComfyApi(comfy) as api:
            settings = Settings(comfy_urls=[rp.member_url, api.member_url], workflow="sdxl",
                                motion_workflow=str(vhs_workflow(tmp_path)), stages=("image", "motion"))
            buf = io.StringIO()
            ok = await run_doctor(settings, Console(file=buf, width=300), check_motion=True)
    finally:
        await comfy.aclose()
    out = buf.getvalue()
    assert not ok
    assert f"RunPod endpoint {rp.member_url}" in out and f"comfyui-api {api.member_url}" in out
    assert "workers 0 idle, 0 running; jobs 0 queued, 0 in progress" in out and "ready (ready)" in out
    assert "no /object_info behind an endpoint" in out
    assert "image workflow sdxl: its outputs come back" in out
    assert "its outputs cannot come back from this endpoint" in out and "VHS_VideoCombine" in out
    assert KEY not in out


async def test_an_endpoint_without_a_key_is_one_clear_problem(monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("SCENEFORGE_RUNPOD_API_KEY", raising=False)
    buf = io.StringIO()
    ok = await run_doctor(Settings(comfy_urls=["runpod://abc123"], workflow="sdxl", stages=("image",)),
                          Console(file=buf, width=300))
    assert not ok and "set RUNPOD_API_KEY" in buf.getvalue()


async def test_the_structured_report_lists_endpoints_as_servers(tmp_path, monkeypatch):
    from sceneforge.doctor import doctor_report

    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    async with FakeRunPod(api_key=KEY, workers=1) as rp:
        settings = Settings(comfy_urls=[rp.member_url], workflow="sdxl", motion_workflow=str(vhs_workflow(tmp_path)),
                            stages=("image", "motion"), motion_enabled=True)
        report = await doctor_report(settings, check_motion=True)
    (endpoint,) = report.servers
    assert endpoint.server == rp.member_url and not endpoint.healthy and not report.healthy
    names = {c.name: c for c in endpoint.checks}
    assert names["reachable"].ok and "workers 0 idle" in names["reachable"].detail
    assert "no /object_info" in names["not checked"].detail
    assert names["image workflow sdxl"].ok and not names[f"motion workflow {tmp_path / 'vhs.json'}"].ok
    assert KEY not in report.model_dump_json()
