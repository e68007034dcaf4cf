"""ComfyClient against the fake ComfyUI server on loopback: one test per behaviour.

Waiting is driven by injected time (``FakeTime``) wherever the client would wait
for seconds; the only real waits are the fake server's few milliseconds of work.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid

import pytest
from comfy_helpers import NORMAL_GRAPH, REFERENCE, SAMPLES, FakeTime, exception_chain_text
from PIL import Image

from fakes.comfy_server import FakeComfyServer
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.protocol.errors_map import node_error_lines, status_error
from sceneforge.comfy.protocol.result import JobResult
from sceneforge.errors import (
    ConfigError,
    DownloadError,
    GenerationError,
    JobInterruptedError,
    JobTimeoutError,
    PermanentError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
    WorkflowError,
)
from sceneforge.retry import is_retryable


def make_client(srv: FakeComfyServer, t: FakeTime | None = None, **kw) -> ComfyClient:
    if t is not None:
        kw.setdefault("clock", t.clock)
        kw.setdefault("sleep", t.sleep)
    kw.setdefault("poll_interval", 1.0)
    return ComfyClient(kw.pop("url", srv.url), **kw)


def graph(prefix: str = "acc/test", color: int = 123456, batch: int = 3) -> dict:
    g = copy.deepcopy(NORMAL_GRAPH)
    g["1"]["inputs"].update(color=color, batch_size=batch)
    g["2"]["inputs"]["filename_prefix"] = prefix
    return g


# --- health -----------------------------------------------------------------------
async def test_health_check_ok(comfy_server):
    async with make_client(comfy_server) as c:
        stats = await c.system_stats()
    assert stats["system"]["comfyui_version"] == "0.33.0"


async def test_health_check_refused_names_url_and_cause(dead_url):
    async with ComfyClient(dead_url) as c:
        with pytest.raises(ServerUnavailableError) as ei:
            await c.system_stats()
    assert isinstance(ei.value, RuntimeError)
    assert dead_url in str(ei.value) and "connection refused" in str(ei.value)
    assert is_retryable(ei.value)


# --- a normal job -------------------------------------------------------------------
async def test_run_opens_ws_first_then_posts_and_reads_history(comfy_server):
    events: list[tuple[str, dict]] = []
    async with make_client(comfy_server) as c:
        result = await c.run(graph(), on_event=lambda k, d: events.append((k, d)))
    assert [r["filename"] for r in result.images()] == ["test_00001_.png", "test_00002_.png", "test_00003_.png"]
    assert result.images("2")[0]["subfolder"] == "acc" and result.images("7") == []
    body = comfy_server.prompts[-1]
    assert body["prompt"] == graph() and body["prompt_id"] == result.prompt_id
    assert str(uuid.UUID(body["prompt_id"])) == body["prompt_id"]
    # The websocket with this clientId was opened before the POST.
    paths = [(r["method"], r["path"], r["query"].get("clientId")) for r in comfy_server.requests]
    ws_at = paths.index(("GET", "/ws", body["client_id"]))
    assert ws_at < paths.index(("POST", "/prompt", None))
    kinds = [k for k, _ in events]
    assert kinds[0] == "queued" and {"started", "executing", "executed"} <= set(kinds)
    assert all(d["prompt_id"] == result.prompt_id for _, d in events)
    assert [j["status"] for j in comfy_server.jobs] == ["success"]


async def test_history_race_waits_for_executing_null(comfy_server):
    # History is stored 0.2 s after execution_success: a client that read it then would get {}.
    comfy_server.history_delay = 0.2
    async with make_client(comfy_server) as c:
        result = await c.run(graph())
    assert len(result.images()) == 3
    assert comfy_server.history_requests == [(result.prompt_id, True)]


async def test_history_still_empty_after_the_end_is_polled(comfy_server, fake_time):
    comfy_server.fault("history_late", delay=0.02)
    async with make_client(comfy_server, fake_time, poll_interval=0.05, history_attempts=50) as c:
        result = await c.run(graph())
    assert len(result.images()) == 3
    found = [ok for _, ok in comfy_server.history_requests]
    assert found[0] is False and found[-1] is True


# --- websocket trouble --------------------------------------------------------------
async def test_dropped_websocket_reconnects_and_completes(comfy_server):
    comfy_server.fault("ws_drop", times=1, pause=0.05)
    comfy_server.job_time = 0.05
    events: list[str] = []
    async with make_client(comfy_server, poll_interval=0.02) as c:
        result = await c.run(graph(), on_event=lambda k, d: events.append(k))
    assert len(result.images()) == 3
    assert "ws_dropped" in events and "ws_reconnected" in events
    ids = {w["client_id"] for w in comfy_server.ws_connects}
    assert len(comfy_server.ws_connects) >= 2 and len(ids) == 1  # same clientId again
    assert len(comfy_server.jobs) == 1


async def test_binary_preview_frames_are_skipped_and_progress_still_reported(comfy_server, fake_time):
    """A server with previews on sends a ~22 kB binary frame after every sampler step (recorded); a flood of
    them must neither break nor drop the socket: every step's progress is reported and the job completes
    on the websocket, with no reconnect or polling."""
    steps = 200
    comfy_server.accept_any_model = True
    comfy_server.preview_frames = True
    sd15 = json.loads((REFERENCE / "sd15_t2i_api.json").read_text(encoding="utf-8"))
    sd15["3"]["inputs"]["steps"] = steps
    events: list[tuple[str, dict]] = []
    async with make_client(comfy_server, fake_time, ws_idle_timeout=1000, timeout=100_000) as c:
        result = await c.run(sd15, on_event=lambda k, d: events.append((k, d)))
        again = await c.run(graph(), on_event=lambda k, d: events.append((k, d)))  # the same socket serves on
    assert len(result.images()) == 1 and len(again.images()) == 3
    assert comfy_server.binary_sent == steps  # the flood did reach the client
    assert [d["value"] for k, d in events if k == "progress"] == list(range(1, steps + 1))
    kinds = {k for k, _ in events}
    assert not kinds & {"ws_dropped", "ws_reconnected", "ws_idle", "polling"}, kinds
    assert len(comfy_server.ws_connects) == 1


async def test_silent_websocket_falls_back_to_polling(comfy_server, fake_time):
    comfy_server.fault("ws_silent", times=1)
    events: list[str] = []
    async with make_client(comfy_server, fake_time, ws_idle_timeout=5) as c:
        result = await c.run(graph(), on_event=lambda k, d: events.append(k))
    assert len(result.images()) == 3
    assert "polling" in events or "ws_idle" in events
    assert fake_time.now - 1000.0 < 60  # found within a few idle periods, not at the timeout


async def test_timeout_cancels_on_server(comfy_server, fake_time):
    comfy_server.fault("hang", times=1)
    async with make_client(comfy_server, fake_time, timeout=20, ws_idle_timeout=1000) as c:
        with pytest.raises(JobTimeoutError) as ei:
            await c.run(graph())
    pid = comfy_server.prompts[-1]["prompt_id"]
    assert pid in comfy_server.queue_deletes
    assert {"prompt_id": pid} in comfy_server.interrupts
    assert "20 s" in str(ei.value) and comfy_server.url in str(ei.value)
    assert is_retryable(ei.value)
    for _ in range(100):  # the hung job ends once interrupted
        if comfy_server.jobs[-1]["status"] == "interrupted":
            break
        await asyncio.sleep(0.005)
    assert comfy_server.jobs[-1]["status"] == "interrupted"


async def test_server_restart_mid_job_is_transient(comfy_server, fake_time):
    comfy_server.fault("hang", times=1)
    async with make_client(comfy_server, fake_time, timeout=1000) as c:
        task = asyncio.create_task(c.run(graph()))
        while not comfy_server.jobs or comfy_server.jobs[-1]["status"] != "running":
            await asyncio.sleep(0.002)
        await comfy_server.restart()
        with pytest.raises(TransientError) as ei:
            await task
    assert "vanished" in str(ei.value)


async def test_server_gone_mid_job_is_unavailable(comfy_server, fake_time):
    comfy_server.fault("hang", times=1)
    async with make_client(comfy_server, fake_time, timeout=1000, unreachable_after=3) as c:
        task = asyncio.create_task(c.run(graph()))
        while not comfy_server.jobs or comfy_server.jobs[-1]["status"] != "running":
            await asyncio.sleep(0.002)
        await comfy_server.stop_listening()
        with pytest.raises(ServerUnavailableError) as ei:
            await task
    assert is_retryable(ei.value) and comfy_server.url in str(ei.value)


async def test_abandoned_run_is_cancelled_on_server(comfy_server):
    """Ctrl-C mid-job: the running job is interrupted (not only removed from a queue it has left), the job
    queued behind it is deleted, and both calls are done before the cancelled waiters return."""
    comfy_server.fault("hang", times=1)
    async with make_client(comfy_server) as c:
        running = asyncio.create_task(c.run(graph(prefix="acc/running")))
        while not comfy_server.jobs or comfy_server.jobs[-1]["status"] != "running":
            await asyncio.sleep(0.002)
        queued = asyncio.create_task(c.run(graph(prefix="acc/queued")))
        while len(comfy_server.jobs) < 2:
            await asyncio.sleep(0.002)
        first, second = comfy_server.jobs
        assert (first["status"], second["status"]) == ("running", "pending")
        for task in (queued, running):  # the queued one first: once the running one ends, it would start
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert {"prompt_id": first["prompt_id"]} in comfy_server.interrupts  # sent before the waiter returned
        assert second["prompt_id"] in comfy_server.queue_deletes
        while first["status"] == "running":  # the fake ends an interrupted job at its next step
            await asyncio.sleep(0.002)
    assert (first["status"], second["status"]) == ("interrupted", "deleted")
    assert first["outputs"] == {} and comfy_server.history[first["prompt_id"]]["status"]["status_str"] == "error"


# --- error mapping ------------------------------------------------------------------
async def test_400_node_errors_one_line_per_node(comfy_server):
    g = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
        "1": {"class_type": "EmptyImage", "inputs": {"width": 99999, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "y"}},
    }
    async with make_client(comfy_server) as c:
        with pytest.raises(WorkflowError) as ei:
            await c.run(g)
    msg = str(ei.value)
    assert "node 4 CheckpointLoaderSimple: ckpt_name: 'x.safetensors' not in []" in msg
    assert "node 1 EmptyImage: width: Value 99999 bigger than max of 16384" in msg
    assert set(ei.value.node_errors) == {"4", "1"}
    assert not is_retryable(ei.value) and comfy_server.jobs == []


async def test_400_unknown_node_type(comfy_server):
    g = {"1": {"class_type": "NoSuchNodeXYZ", "inputs": {}}}
    async with make_client(comfy_server) as c:
        with pytest.raises(WorkflowError, match="node 1 NoSuchNodeXYZ: Node 'NoSuchNodeXYZ' not found"):
            await c.run(g)


async def test_400_fault_shape_for_a_valid_graph(comfy_server):
    comfy_server.fault("node_errors", times=1)
    g = graph()
    g["2"]["inputs"]["filename_prefix"] = "acc/x"
    async with make_client(comfy_server) as c:
        with pytest.raises(WorkflowError, match="node 2 SaveImage: filename_prefix: 'acc/x' not in \\[\\]"):
            await c.run(g)


async def test_api_prefix_in_the_url(comfy_server):
    async with make_client(comfy_server, url=comfy_server.url + "/api/") as c:
        result = await c.run(graph())
    assert result.images() and {r["path"].split("/")[1] for r in comfy_server.requests} == {"api"}


async def test_500_is_transient(comfy_server):
    comfy_server.fault("prompt_500", times=1)
    async with make_client(comfy_server) as c:
        with pytest.raises(TransientError, match="HTTP 500") as ei:
            await c.run(graph())
        assert is_retryable(ei.value)
        assert len((await c.run(graph())).images()) == 3  # the next attempt works


async def test_partial_acceptance_is_rejected_and_cancelled(comfy_server):
    g = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nope1.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "acc/partial_bad"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/partial_good"}},
    }
    comfy_server.fault("hang", times=1)  # keep the accepted half from finishing before the cancel
    async with make_client(comfy_server) as c:
        with pytest.raises(WorkflowError, match="node 1 LoadImage: .*Invalid image file: nope1.png") as ei:
            await c.run(g)
    assert "only part" in str(ei.value)
    assert comfy_server.jobs[0]["prompt_id"] in comfy_server.queue_deletes


async def test_execution_error_is_generation_error(comfy_server):
    g = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 2, "color": 0}},
        "2": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "alpha"}},
        "3": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/rt_err"}},
    }
    comfy_server.fault("execution_error", times=1, node="2")
    async with make_client(comfy_server) as c:
        with pytest.raises(GenerationError) as ei:
            await c.run(g)
    err = ei.value
    assert type(err) is GenerationError and (err.node_id, err.node_type) == ("2", "ImageToMask")
    assert str(err).startswith("node 2 ImageToMask: IndexError: index 3 is out of bounds for dimension 3 with size 3")
    assert is_retryable(err)


async def test_execution_interrupted(comfy_server):
    comfy_server.fault("execution_interrupted", times=1)
    async with make_client(comfy_server) as c:
        with pytest.raises(JobInterruptedError) as ei:
            await c.run(graph())
    assert ei.value.node_id == "1" and not is_retryable(ei.value)


@pytest.mark.parametrize(
    ("status", "kind", "retry"),
    [(401, ConfigError, False), (403, ConfigError, False), (404, ConfigError, False),
     (429, TransientError, True), (500, TransientError, True), (502, TransientError, True),
     (418, PermanentError, False)],
)
def test_http_status_mapping(status, kind, retry):
    err = status_error(status, "<html>body</html>", "http://***@h:1", "read the queue")
    assert type(err) is kind and is_retryable(err) is retry and "http://***@h:1" in str(err)


def test_node_error_lines_of_every_recorded_400():
    import json

    files = sorted((SAMPLES / "errors").glob("*.json"))
    if not files:
        pytest.skip("recorded samples not available")
    for f in files:
        resp = json.loads(f.read_text())["response"]
        if resp["status"] != 400:
            continue
        lines = [line for group in node_error_lines(resp["json"]).values() for line in group]
        assert lines, f.name
        if resp["json"]["node_errors"]:
            assert all(line.startswith("node ") for line in lines), f.name


# --- downloads ----------------------------------------------------------------------
async def test_download_writes_the_png(comfy_server, tmp_path):
    async with make_client(comfy_server) as c:
        result = await c.run(graph())
        dest = await c.download(result.images()[0], tmp_path / "out" / "scene.png")
    with Image.open(dest) as im:
        assert im.size == (64, 64) and im.getpixel((0, 0)) == (1, 226, 64)
    assert [r["query"] for r in comfy_server.requests if r["path"] == "/view"] == [
        {"filename": "test_00001_.png", "subfolder": "acc", "type": "output"}
    ]


async def test_truncated_download_leaves_nothing(comfy_server, tmp_path):
    async with make_client(comfy_server) as c:
        result = await c.run(graph())
        comfy_server.fault("view_truncated", times=1)
        with pytest.raises(DownloadError) as ei:
            await c.download(result.images()[0], tmp_path / "scene.png")
    assert is_retryable(ei.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .part


async def test_download_404_names_the_file(comfy_server, tmp_path):
    async with make_client(comfy_server) as c:
        with pytest.raises(GenerationError, match="acc/gone_00001_.png"):
            await c.download({"filename": "gone_00001_.png", "subfolder": "acc", "type": "output"}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "ref",
    [
        {"filename": "../../etc/passwd", "subfolder": "", "type": "output"},
        {"filename": "/etc/passwd", "subfolder": "", "type": "output"},
        {"filename": "a\\b.png", "subfolder": "", "type": "output"},
        {"filename": "x\x00.png", "subfolder": "", "type": "output"},
        {"filename": "ok.png", "subfolder": "../..", "type": "output"},
        {"filename": "ok.png", "subfolder": "/abs", "type": "output"},
        {"filename": "ok.png", "subfolder": "", "type": "../output"},
    ],
)
async def test_traversing_names_are_refused_before_any_request(comfy_server, tmp_path, ref):
    async with make_client(comfy_server) as c:
        with pytest.raises(UnsafePathError):
            await c.download(ref, tmp_path / "x.png")
    assert not any(r["path"] == "/view" for r in comfy_server.requests)


async def test_server_reported_evil_names_are_refused(comfy_server, tmp_path):
    comfy_server.fault("evil_filenames", times=1)
    async with make_client(comfy_server) as c:
        result = await c.run(graph())
        with pytest.raises(UnsafePathError):
            await c.download(result.images()[0], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# --- uploads and queue control ------------------------------------------------------
async def test_upload_dedups_and_renames(comfy_server, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"first image bytes")
    b.write_bytes(b"other image bytes")
    async with make_client(comfy_server) as c:
        assert await c.upload_image(a, name="scene.png") == "scene.png"
        assert await c.upload_image(a, name="scene.png") == "scene.png"  # identical bytes: same name
        assert await c.upload_image(b, name="scene.png") == "scene (1).png"
        assert await c.upload_image(b, name="scene.png", overwrite=True) == "scene.png"
        assert await c.upload_image(a, subfolder="sf/x") == "sf/x/a.png"
        with pytest.raises(UnsafePathError):
            await c.upload_image(a, subfolder="../up")
        comfy_server.fault("upload_400", times=1)
        with pytest.raises(GenerationError, match="rejected the upload") as ei:
            await c.upload_image(a)
    assert not is_retryable(ei.value)
    assert comfy_server.store.get("input", "", "scene.png") == b"other image bytes"


async def test_queue_depth_object_info_and_cancel(comfy_server):
    comfy_server.fault("hang", times=1)
    async with make_client(comfy_server) as c:
        assert await c.queue_depth() == 0
        assert "EmptyImage" in await c.object_info("EmptyImage")
        assert await c.object_info("NoSuchNode") == {}
        first = await c.submit(graph(), client_id="x", prompt_id=str(uuid.uuid4()))
        second = await c.submit(graph(color=1), client_id="x", prompt_id=str(uuid.uuid4()))
        assert await c.queue_depth() == 2
        await c.cancel(second[0])
        await c.cancel(first[0])
        assert second[0] in comfy_server.queue_deletes
        for _ in range(100):
            if await c.queue_depth() == 0:
                break
            await asyncio.sleep(0.005)
        assert await c.queue_depth() == 0
    assert [j["status"] for j in comfy_server.jobs] == ["interrupted", "deleted"]


# --- credentials --------------------------------------------------------------------
async def test_headers_and_basic_auth_are_sent_and_never_shown(comfy_server, dead_url):
    comfy_server.require_headers = {"X-Api-Key": "hdr-s3cret"}
    comfy_server.require_basic_auth = ("alice", "pw-s3cret")
    url = comfy_server.url.replace("http://", "http://alice:pw-s3cret@")
    async with make_client(comfy_server, url=url, headers={"X-Api-Key": "hdr-s3cret"}) as c:
        assert "pw-s3cret" not in repr(c) and "pw-s3cret" not in c.url
        result = await c.run(graph())
        assert result.server == c.server and "***@" in c.server and "pw-s3cret" not in c.server
    assert all(r["headers"].get("X-Api-Key") == "hdr-s3cret" for r in comfy_server.requests)
    assert all(w["headers"].get("Authorization", "").startswith("Basic ") for w in comfy_server.ws_connects)

    # Wrong credentials: a configuration error that shows neither secret.
    bad = comfy_server.url.replace("http://", "http://alice:wrong-pw@")
    async with make_client(comfy_server, url=bad, headers={"X-Api-Key": "hdr-s3cret"}) as c:
        with pytest.raises(ConfigError) as ei:
            await c.system_stats()
    text = exception_chain_text(ei.value)
    assert "wrong-pw" not in text and "hdr-s3cret" not in text and "HTTP 401" in text

    # Unreachable: the message names the redacted URL only, cause chain included.
    secret_url = dead_url.replace("http://", "http://bob:pw-s3cret@")
    async with ComfyClient(secret_url, headers={"X-Api-Key": "hdr-s3cret"}) as c:
        with pytest.raises(ServerUnavailableError) as ei2:
            await c.run(graph())
    text = exception_chain_text(ei2.value)
    assert "http://***@127.0.0.1" in str(ei2.value)
    assert "pw-s3cret" not in text and "hdr-s3cret" not in text and "bob" not in text


def test_bad_urls_are_config_errors():
    with pytest.raises(ConfigError, match="ComfyUI URL must look like http://host:port: ftp://host"):
        ComfyClient("ftp://host")
    assert ComfyClient("https://h:1/prefix/")._url("ws", ws=True).human_repr() == "wss://h:1/prefix/ws"


# --- JobResult ----------------------------------------------------------------------
def test_job_result_lists_images_in_output_order():
    r = JobResult("p", {
        "108": {"images": [{"filename": "v_00001_.mp4", "subfolder": "video", "type": "output"}], "animated": [True]},
        "200": {"images": [{"filename": f"f_{i:05d}_.png", "subfolder": "", "type": "output"} for i in (1, 2)]},
        "7": {"images": [{"filename": "t_00001_.png", "subfolder": "", "type": "temp"}]},
        "6": {"text": ["8.0"]},
    })
    assert [i["filename"] for i in r.images()] == ["v_00001_.mp4", "f_00001_.png", "f_00002_.png", "t_00001_.png"]
    assert r.images("108")[0]["animated"] is True and "animated" not in r.images("200")[0]
    assert [i["filename"] for i in r.still_images()] == ["f_00001_.png", "f_00002_.png", "t_00001_.png"]
    assert r.images("6") == []
