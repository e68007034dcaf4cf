"""Workflows are checked against the servers' /object_info before any work (issue #14): nothing runs,
nothing is written, every scene is named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app
from sceneforge.workflows import read_bundled

SDXL_CKPT = "sd_xl_base_1.0.safetensors"


def run(srv: FakeComfyServer, scenes_file: Path, out: Path, *extra: str):
    return CliRunner().invoke(app, ["run", str(scenes_file), "--tts", "fake", "--comfy-url", srv.url,
                                    "--workflow", "sdxl", "--out", str(out), *extra])


def test_workflows_a_server_would_refuse_stop_the_run_before_any_work(tmp_path: Path):
    custom = json.loads(read_bundled("sdxl"))
    custom["999"] = {"class_type": "NotInstalledNode", "inputs": {}}
    (tmp_path / "custom.json").write_text(json.dumps(custom))
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps([
        {"script": "one", "image_prompt": "a cat"},
        {"script": "two", "image_prompt": "a dog", "workflow": "custom.json"},
        {"script": "three", "image_prompt": "a cow", "workflow": "sd15"},
        {"script": "four", "image_prompt": "a hen", "workflow": "sd15"},
    ]))
    with FakeComfyServer(job_time=0.0) as srv:
        srv.models["checkpoints"] = [SDXL_CKPT]  # this server has SDXL only
        r = run(srv, scenes, tmp_path / "out")
        jobs = len(srv.jobs)
        asked = [q["path"] for q in srv.requests if q["path"].startswith("/object_info")]
    assert r.exit_code == 2, r.output
    # only the classes the graphs use, each once (not the 1.6 MB of every class)
    assert "/object_info" not in asked and "/object_info/NotInstalledNode" in asked
    assert len(asked) == len(set(asked)) and "/object_info/KSampler" in asked
    text = " ".join(r.output.split())
    assert "scene 2: workflow " in text and "NotInstalledNode" in text and "custom node not installed" in text
    assert "scenes 3, 4: workflow bundled:sd15: model file v1-5-pruned-emaonly.safetensors is not on the server" in text
    assert "scene 1" not in text  # the run's own workflow is fine here
    assert jobs == 0 and not (tmp_path / "out").exists()


def test_a_server_that_does_not_answer_is_left_to_the_health_check(tmp_path: Path, dead_url: str):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps([{"script": "one", "image_prompt": "a cat"}]))
    r = CliRunner().invoke(app, ["run", str(scenes), "--tts", "fake", "--stages", "image", "--comfy-url", dead_url,
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and "connection refused" in r.output  # the run's health check, as before
