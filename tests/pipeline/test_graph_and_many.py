"""The LangGraph graph end to end, and several scene files sharing one server pool."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app
from sceneforge.config import Settings
from sceneforge.errors import ServerUnavailableError
from sceneforge.integrations.langgraph import build_graph, retry_on

#: Only the tests that build a graph need LangGraph (an optional extra); retry_on and the
#: shared pool run without it.
needs_langgraph = pytest.mark.skipif(importlib.util.find_spec("langgraph") is None,
                                     reason="LangGraph is not installed (pip install 'sceneforge[graph]')")

SCENES = [{"script": "하나", "image_prompt": "one", "keep": 1}, {"script": "둘", "image_prompt": "two"}]


@needs_langgraph
async def test_graph_end_to_end(servers, tmp_path: Path):
    srv = servers[0]
    graph = build_graph(Settings(out_dir=tmp_path, tts="fake", comfy_urls=(srv.url,), workflow="sdxl"))
    assert set(graph.get_graph().nodes) >= {"audio_generator", "visual_generator", "motion_generator"}
    out = await graph.ainvoke({"topic": "graph", "scenes": SCENES})
    assert out["topic"] == "graph" and out["scenes"][0]["keep"] == 1
    for n, sc in enumerate(out["scenes"], 1):
        assert sc["audio_path"].endswith(f"audio_scene_{n}.mp3") and Path(sc["audio_path"]).is_file()
        assert sc["image_path"].endswith(f"image_scene_{n}.png") and Path(sc["image_path"]).is_file()
        assert "image_seed" in sc
    assert len(srv.jobs) == 2


@needs_langgraph
def test_graph_sync_invoke_and_as_subgraph(tmp_path: Path):
    """Usable with .invoke() and as a node of a larger graph with extra state keys."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    inner = build_graph(Settings(out_dir=tmp_path, offline=True, stages=("audio", "image")))

    class Outer(TypedDict, total=False):
        topic: str
        scenes: list
        title: str

    outer = StateGraph(Outer)
    outer.add_node("assets", inner)
    outer.add_node("title", lambda s: {"title": f"{s['topic']} ({len(s['scenes'])} scenes)"})
    outer.add_edge(START, "assets")
    outer.add_edge("assets", "title")
    outer.add_edge("title", END)
    out = outer.compile().invoke({"topic": "outer", "scenes": SCENES})
    assert out["title"] == "outer (2 scenes)"
    assert all(Path(s["image_path"]).is_file() for s in out["scenes"])


def test_retry_on_does_not_multiply_attempts():
    already = ServerUnavailableError("gone after per-scene retries")
    already.add_note("gave up after 3 attempts")
    assert retry_on(ServerUnavailableError("health check failed")) is True
    assert retry_on(already) is False
    assert retry_on(ValueError("scene 1: script is empty")) is False


def test_two_scene_files_share_the_pool(tmp_path: Path):
    with FakeComfyServer(job_time=0.02) as a, FakeComfyServer(job_time=0.02) as b:
        for s in (a, b):
            s.accept_any_model = True
        files = []
        for name in ("first", "second"):
            f = tmp_path / f"{name}.json"
            f.write_text(json.dumps({"topic": name, "scenes": [{"script": f"{name} {i}", "image_prompt": f"{name} {i}"} for i in range(3)]}))
            files.append(str(f))
        r = CliRunner().invoke(app, ["run", *files, "--out", str(tmp_path / "out"), "--tts", "fake",
                                     "--comfy-url", a.url, "--comfy-url", b.url, "--workflow", "sdxl"],
                               catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert len(a.jobs) + len(b.jobs) == 6 and a.jobs and b.jobs
        system_stats = sum(1 for s in (a, b) for q in s.requests if q["path"].endswith("/system_stats"))
        assert system_stats == 2  # one health check per server for both files
    for name in ("first", "second"):
        state = json.loads((tmp_path / "out" / name / "scenes.json").read_text())
        assert all(Path(s["image_path"]).is_file() for s in state["scenes"])
