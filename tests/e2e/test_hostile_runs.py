"""A whole run against a hostile ComfyUI (issue #11), as a user meets it on the command line.

Each run ends by itself, exits non-zero with a reason naming the scene and the server,
leaves no partial file, and records no invalid asset in scenes.json or the cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app

STATE = {"topic": "hostile", "scenes": [{"script": "one", "image_prompt": "a red door"}]}


def run(srv: FakeComfyServer, tmp_path: Path, *extra: str, env: dict[str, str] | None = None):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps(STATE))
    # retry waits are real here (3 s, 6 s) unless shortened: this config makes them instant
    cfg = tmp_path / "sceneforge.toml"
    cfg.write_text("[image_retry]\nmax_attempts = 3\ninitial_interval = 0.0\n")
    return CliRunner().invoke(app, ["run", str(scenes), "--stages", "image", "--comfy-url", srv.url, "--workflow",
                                    "sdxl", "--width", "64", "--height", "64", "--out", str(tmp_path / "out"),
                                    "--config", str(cfg), *extra], env=env)


def nothing_recorded(tmp_path: Path) -> None:
    root = tmp_path / "out" / "hostile"
    state = json.loads((root / "scenes.json").read_text())
    assert "image_path" not in state["scenes"][0]
    assert not (root / "image_scene_1.png").exists()
    assert not list(root.rglob("*.part")) and not (root / ".sceneforge" / "image").exists()


@pytest.mark.parametrize(("fault", "words"), [("view_html", "not a valid image"),
                                              ("view_short_png", "not a valid image")])
def test_a_login_page_or_a_truncated_png_is_never_kept(tmp_path: Path, fault: str, words: str):
    with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        srv.fault(fault, times=99)
        r = run(srv, tmp_path)
    assert r.exit_code == 1
    first = r.output.strip().splitlines()[0]
    assert first.startswith("error: scene 1 (image): ") and srv.url in first and words in first
    assert "gave up after 3 attempts" in r.output
    nothing_recorded(tmp_path)


def test_an_endless_download_stops_at_the_configured_cap(tmp_path: Path):
    with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        srv.fault("view_endless", times=99)
        r = run(srv, tmp_path, env={"SCENEFORGE_COMFY_MAX_DOWNLOAD_MB": "1"})
        sent = srv.hostile_sent["view_endless"]
    assert r.exit_code == 1 and "scene 1 (image)" in r.output and srv.url in r.output and "1 MiB" in r.output
    assert sent < 3 * 64 * 1024 * 1024  # three attempts, each stopped near the cap
    nothing_recorded(tmp_path)


def test_a_trickling_download_ends_at_its_deadline(tmp_path: Path):
    with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        srv.fault("view_trickle", times=99, interval=0.01)
        r = run(srv, tmp_path, env={"SCENEFORGE_COMFY_DOWNLOAD_TIMEOUT": "0.2"})
    assert r.exit_code == 1 and "scene 1 (image)" in r.output and "within 0.2 s" in r.output
    nothing_recorded(tmp_path)
