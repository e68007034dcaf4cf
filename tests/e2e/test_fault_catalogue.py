"""Faults at the level a user sees: through the stages (real retry schedule, waits recorded) or the CLI.

The client- and backend-level tests (tests/comfy, tests/tts, tests/motion) prove each fault is
mapped to the right error; these prove what a *run* then does: which scene is retried with which
waits, what is resubmitted and what is not, what is kept. ``docs/faults.md`` maps every fault to
its tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mutagen.mp3 import MP3
from PIL import Image
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from fakes.tts_servers import FakeEdgeServer, FakeOpenAIServer
from sceneforge.cli import app
from sceneforge.config import Settings
from sceneforge.errors import (
    JobInterruptedError,
    TransientError,
    UnsafePathError,
    WorkflowError,
    error_text,
)
from sceneforge.events import Event
from sceneforge.pipeline import Engine, aplan_run
from sceneforge.pipeline.nodes import aaudio_generator

pytestmark = pytest.mark.timeout(60)


class Waits:
    """An injected sleep for the stages' retry waits: recorded, never slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, s: float) -> None:
        self.waits.append(s)
        await asyncio.sleep(0)


def retried(events: list[Event], stage: str) -> list[tuple[int, int, float]]:
    return [(e.scene, e.data["attempt"], e.data["wait"]) for e in events if e.kind == "scene_retried" and e.stage == stage]


def no_parts(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".part" in p.name]


# ============================================================================ narration
TTS_STATE = {"topic": "tts faults", "scenes": [{"script": f"Narration line number {n}.", "image_prompt": "x"}
                                               for n in (1, 2, 3)]}


@pytest.fixture
async def openai_srv():
    async with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
async def edge_srv():
    async with FakeEdgeServer() as srv:
        yield srv


def tts_settings(tmp: Path, engine: str, url: str, **kw: Any) -> Settings:
    where = {"openai_base_url": url} if engine == "openai" else {"edge_url": url}
    # One request at a time, so the fake's next N faults all land on scene 1.
    kw.setdefault("tts_timeout", 5.0)
    return Settings(out_dir=tmp, tts=engine, stages=("audio",), tts_concurrency=1, **where, **kw)


@pytest.mark.parametrize(("engine", "fault"), [
    ("openai", "hang"), ("openai", "429"), ("openai", "503"), ("openai", "empty"),
    ("edge", "hang"), ("edge", "no_audio"),
])
async def test_tts_fault_is_retried_per_scene_with_waits_1_then_2(tmp_path: Path, openai_srv, edge_srv, engine, fault):
    """The engine hangs / answers 429 / 503 / empty audio twice: scene 1 waits 1 s then 2 s and succeeds;
    the other scenes are not retried and nothing half-written is left."""
    srv = openai_srv if engine == "openai" else edge_srv
    url = srv.base_url if engine == "openai" else srv.url
    srv.fail(fault, times=2)
    events: list[Event] = []
    waits = Waits()
    # A hang costs the timeout each time: short, with room for a loaded machine's normal answer.
    s = tts_settings(tmp_path, engine, url, **({"tts_timeout": 0.8} if fault == "hang" else {}))
    out = await aaudio_generator(TTS_STATE, s, on_event=events.append, sleep=waits)
    assert waits.waits == [1.0, 2.0]
    assert retried(events, "audio") == [(1, 1, 1.0), (1, 2, 2.0)]
    assert [r["fault"] for r in srv.requests].count(fault) == 2 and len(srv.requests) == 5
    for sc in out["scenes"]:
        assert MP3(sc["audio_path"]).info.length > 0
    assert no_parts(tmp_path)


async def test_tts_fault_that_persists_fails_that_scene_only_and_keeps_the_rest(tmp_path: Path, openai_srv):
    """503 three times in a row: scene 1 gives up after waits 1 s, 2 s (the error names scene and
    server); scenes 2 and 3 are done and recorded; a re-run makes only scene 1."""
    openai_srv.fail("503", times=3)
    s = tts_settings(tmp_path, "openai", openai_srv.base_url)
    _, err, _, waits = await run(s, TTS_STATE)
    assert isinstance(err, TransientError), err
    assert waits == [1.0, 2.0]
    msg = error_text(err)
    assert "scene 1" in msg and "HTTP 503" in msg and openai_srv.base_url.split("/v1")[0] in msg
    root = tmp_path / "tts-faults"
    assert not (root / "audio_scene_1.mp3").exists()
    assert (root / "audio_scene_2.mp3").is_file() and (root / "audio_scene_3.mp3").is_file()
    state = json.loads((root / "scenes.json").read_text())
    assert "audio_path" not in state["scenes"][0] and state["scenes"][2]["audio_path"].endswith("audio_scene_3.mp3")
    n = len(openai_srv.requests)
    sf, err, _, _ = await run(s, TTS_STATE)
    assert err is None
    assert len(openai_srv.requests) == n + 1 and openai_srv.requests[-1]["json"]["input"] == TTS_STATE["scenes"][0]["script"]
    assert MP3(sf.state()["scenes"][0]["audio_path"]).info.length > 0


# ============================================================================ ComfyUI, image stage
IMG_STATE = {"topic": "comfy faults", "scenes": [{"script": "a", "image_prompt": "a red fox"},
                                                 {"script": "b", "image_prompt": "a blue bird"}]}


@pytest.fixture
async def comfy():
    async with FakeComfyServer() as srv:
        srv.accept_any_model = True
        yield srv


def img_settings(tmp: Path, url: str, **kw: Any) -> Settings:
    base: dict[str, Any] = {"out_dir": tmp, "stages": ("image",), "comfy_urls": (url,), "workflow": "sdxl",
                            "width": 64, "height": 64, "comfy_poll_interval": 0.02, "comfy_timeout": 20}
    base.update(kw)
    return Settings(**base)


async def run(settings: Settings, state: dict, *, ws_idle: float | None = None,
              on_event=None) -> tuple[Any, BaseException | None, list[Event], list[float]]:
    """Run the pipeline as ``sceneforge run`` does (scenes.json written, even on failure), with the
    retry waits recorded instead of slept; return (scene file, error, events, waits)."""
    sf = (await aplan_run([state], settings)).topics[0]
    waits = Waits()
    engine = Engine(settings, sleep=waits)
    engine.backends()
    if ws_idle is not None:  # not a setting: how long a silent websocket is trusted (30 s by default)
        for s in engine.resources.pool.servers:
            s.client.ws_idle_timeout = ws_idle
    events: list[Event] = []

    def emit(ev: Event) -> None:
        events.append(ev)
        if on_event is not None:
            on_event(ev)

    err: BaseException | None = None
    try:
        await engine.run_topic(sf, emit=emit)
    except Exception as exc:  # noqa: BLE001 - returned to the test
        err = exc
    finally:
        await engine.aclose()
    return sf, err, events, waits.waits


async def run_images(srv: FakeComfyServer, tmp: Path, state: dict = IMG_STATE, *, ws_idle: float | None = None,
                     on_event=None, **kw: Any) -> tuple[Any, BaseException | None, list[Event], list[float]]:
    """``sceneforge run --stages image`` against ``srv``."""
    return await run(img_settings(tmp, srv.url, **kw), state, ws_idle=ws_idle, on_event=on_event)


def successes(srv: FakeComfyServer) -> Counter[str]:
    """Successful jobs per SaveImage prefix (one prefix per scene)."""
    out: Counter[str] = Counter()
    for j in srv.jobs:
        if j["status"] == "success":
            out[next(n["inputs"]["filename_prefix"] for n in j["graph"].values() if n["class_type"] == "SaveImage")] += 1
    return out


def images_ok(tmp: Path, scenes: list[int]) -> None:
    root = tmp / "comfy-faults"
    state = json.loads((root / "scenes.json").read_text())
    for n in scenes:
        p = Path(state["scenes"][n - 1]["image_path"])
        assert p == root / f"image_scene_{n}.png"
        with Image.open(p) as im:
            im.verify()
    assert no_parts(root)


# fault, expected retry waits, expected error (None: every scene done), submitted jobs in all
RECOVERED = [
    ("prompt_500", [3.0], 2),         # 500 on POST /prompt: transient, the scene is resubmitted
    ("execution_error", [3.0], 3),    # a node raised (e.g. out of memory): transient, rerun
    ("ws_drop", [], 2),               # the websocket dropped mid-job: reconnect (same clientId), no retry
    ("ws_silent", [], 2),             # no messages while the job finishes: /history polled, no retry
    ("history_late", [], 2),          # history stored only after executing(null): polled until there
    ("view_truncated", [3.0], 2),     # short /view body: retried by *downloading again*, not re-rendering
    ("view_404", [3.0], 2),           # /view 404: retried, the finished job re-read from history, not rerun
]


@pytest.mark.parametrize(("fault", "waits", "jobs"), RECOVERED, ids=[r[0] for r in RECOVERED])
async def test_comfy_fault_recovers_through_the_image_stage(comfy, tmp_path: Path, fault, waits, jobs):
    comfy.job_time = 0.02
    comfy.fault(fault, times=1)
    _, err, events, got = await run_images(comfy, tmp_path, ws_idle=0.3)
    assert err is None, err
    assert got == waits
    assert [w for _, _, w in retried(events, "image")] == waits
    assert len(comfy.jobs) == jobs
    assert set(successes(comfy).values()) == {1} and len(successes(comfy)) == 2  # no finished job ran twice
    images_ok(tmp_path, [1, 2])


PERMANENT = [
    ("node_errors", WorkflowError, "value_not_in_list|not in \\[\\]"),  # 400 with node_errors: the workflow is wrong
    ("execution_interrupted", JobInterruptedError, "interrupted"),      # someone pressed cancel on the server
    ("evil_filenames", UnsafePathError, "could escape its folder"),     # output named ../../evil.png in /etc
]


@pytest.mark.parametrize(("fault", "kind", "words"), PERMANENT, ids=[p[0] for p in PERMANENT])
async def test_comfy_fault_that_retrying_cannot_fix_fails_one_scene_at_once(comfy, tmp_path: Path, fault, kind, words):
    """Not retried (no waits); the error names the scene; the other scene is done and kept."""
    comfy.job_time = 0.02
    comfy.fault(fault, times=1)
    _, err, events, got = await run_images(comfy, tmp_path)
    assert isinstance(err, kind), err
    assert got == [] and retried(events, "image") == []
    failed = [e.scene for e in events if e.kind == "scene_failed" and e.stage == "image"]
    assert len(failed) == 1 and f"scene {failed[0]}" in error_text(err)
    assert re.search(words, error_text(err)), error_text(err)
    images_ok(tmp_path, [3 - failed[0]])
    assert not (tmp_path / "comfy-faults" / f"image_scene_{failed[0]}.png").exists()
    assert not list((tmp_path / "comfy-faults").rglob("evil*"))


async def test_job_past_its_timeout_is_cancelled_on_the_server_and_retried(comfy, tmp_path: Path):
    """The limit counts from when the job starts running (queue time is not counted)."""
    comfy.fault("hang", times=1)
    one = {"topic": "comfy faults", "scenes": IMG_STATE["scenes"][:1]}
    _, err, events, got = await run_images(comfy, tmp_path, one, comfy_timeout=0.5)
    assert err is None, err
    assert got == [3.0]
    hung = next(j for j in comfy.jobs if j["status"] != "success")
    assert hung["prompt_id"] in comfy.queue_deletes and {"prompt_id": hung["prompt_id"]} in comfy.interrupts
    reason = next(e.data["reason"] for e in events if e.kind == "scene_retried")
    assert "did not finish within 0.5 s" in reason and "cancelled on the server" in reason
    for _ in range(100):
        if hung["status"] == "interrupted":
            break
        await asyncio.sleep(0.01)
    assert hung["status"] == "interrupted"  # the GPU was freed, not left working for nobody
    assert len(comfy.jobs) == 2
    images_ok(tmp_path, [1])


async def test_server_restart_mid_run_resubmits_lost_jobs_only(comfy, tmp_path: Path):
    """The server restarts while scene 1's image is done, one job runs and one waits in its queue: it
    forgets its queue and history. The lost jobs are found vanished and resubmitted (waits 3 s); the
    finished scene is not redone; every scene ends with exactly one successful job.

    The restart is timed so that no POST is in flight: a submission that meets the closed port marks
    the only server down, which is a different fault (see docs/faults.md, "known limits")."""
    comfy.job_time = 0.1
    state = {"topic": "comfy faults", "scenes": [{"script": str(n), "image_prompt": f"scene {n} prompt"}
                                                 for n in range(1, 5)]}
    restarted: list[list[str]] = []

    async def restart_when_busy() -> None:
        while True:
            st = [j["status"] for j in comfy.jobs]
            if len(st) == 3 and st[0] == "success" and sorted(st[1:]) == ["pending", "running"]:
                restarted.append([j["graph"]["9"]["inputs"]["filename_prefix"] for j in comfy.jobs])
                await comfy.restart()
                return
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(restart_when_busy())
    _, err, events, got = await run_images(comfy, tmp_path, state)
    watcher.cancel()
    assert restarted, "the restart never found one job done, one running and one queued"
    assert err is None, err
    lost = [j for j in comfy.jobs if j["status"] == "lost"]
    assert len(lost) == 2, [(j["status"], j["graph"]["9"]["inputs"]["filename_prefix"]) for j in comfy.jobs]
    assert got == [3.0, 3.0]
    reasons = [e.data["reason"] for e in events if e.kind == "scene_retried"]
    assert len(reasons) == 2 and all("vanished" in r for r in reasons)
    done = successes(comfy)
    assert sorted(done) == [f"sceneforge/scene_{n}" for n in range(1, 5)] and set(done.values()) == {1}
    prompts = Counter(p["prompt"]["9"]["inputs"]["filename_prefix"] for p in comfy.prompts if isinstance(p, dict))
    first, *in_flight = restarted[0]
    assert prompts[first] == 1  # finished before the restart: never submitted again
    assert all(prompts[p] == 2 for p in in_flight)  # lost: submitted once more
    assert len(comfy.jobs) == 6
    root = tmp_path / "comfy-faults"
    for n in range(1, 5):
        with Image.open(root / f"image_scene_{n}.png") as im:
            im.verify()
    assert no_parts(root)


# ============================================================================ CLI
runner = CliRunner()


def test_comfyui_refusing_connections_at_start_is_one_clear_error_and_keeps_narration(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = tmp_path / "s.json"
    f.write_text(json.dumps(IMG_STATE))
    r = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out"), "--tts", "fake", "--stages", "audio,image",
                            "--comfy-url", f"http://127.0.0.1:{port}"], catch_exceptions=False)
    assert r.exit_code == 1
    assert f"http://127.0.0.1:{port}" in r.output and "refused" in r.output and "Traceback" not in r.output
    state = json.loads((tmp_path / "out" / "comfy-faults" / "scenes.json").read_text())
    assert all(sc["audio_path"] for sc in state["scenes"])  # narration finished and is kept
    assert not any("image_path" in sc for sc in state["scenes"])


async def test_a_job_queued_behind_a_hung_one_is_not_cut_short(comfy, tmp_path: Path):
    """The time limit starts at execution_start: the queued scene waits its turn and then succeeds."""
    comfy.fault("hang", times=1)
    two = {"topic": "queued", "scenes": IMG_STATE["scenes"][:2]}
    _, err, events, got = await run_images(comfy, tmp_path, two, comfy_timeout=0.5)
    assert err is None, err
    assert got == [3.0]  # only the hung scene was retried
    retried = {e.scene for e in events if e.kind == "scene_retried"}
    assert len(retried) == 1
