"""The fake ComfyUI server against the recordings of the real one (raw aiohttp, no ComfyClient)."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import struct
import time
import urllib.request
import uuid
from typing import Any

import aiohttp
import pytest
from comfy_helpers import NORMAL_GRAPH, REFERENCE, SAMPLES
from PIL import Image

from fakes.comfy_server import FakeComfyServer


def recorded(*parts: str) -> Any:
    """A recorded sample under ``tests/data/comfyui/samples``; a missing one fails the test."""
    return json.loads(SAMPLES.joinpath(*parts).read_text())


def shape(msgs: list[dict[str, Any]]) -> list[tuple]:
    """What must match a recording: type, node, cached nodes, queue_remaining, nodes in progress_state."""
    out = []
    for m in msgs:
        d = m["data"]
        if m["type"] == "status":
            out.append(("status", d["status"]["exec_info"]["queue_remaining"]))
        elif m["type"] in ("executing", "executed"):
            out.append((m["type"], d.get("node")))
        elif m["type"] == "execution_cached":
            out.append(("execution_cached", tuple(d["nodes"])))
        elif m["type"] == "progress_state":
            out.append(("progress_state", tuple((k, v["state"]) for k, v in d["nodes"].items())))
        else:
            out.append((m["type"],))
    return out


async def run_raw(session: aiohttp.ClientSession, srv: FakeComfyServer, graph: dict) -> tuple[str, list[dict]]:
    """Open a socket, POST, collect every text frame up to executing(null) of the prompt."""
    cid = str(uuid.uuid4())
    async with session.ws_connect(f"{srv.url}/ws", params={"clientId": cid}) as ws:
        hello = await ws.receive_json()
        assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": cid}}
        async with session.post(f"{srv.url}/prompt", json={"prompt": graph, "client_id": cid}) as resp:
            assert resp.status == 200
            pid = (await resp.json())["prompt_id"]
        msgs = []
        while True:
            msg = await asyncio.wait_for(ws.receive_json(), 5)
            msgs.append(msg)
            if msg["type"] == "executing" and msg["data"] == {"node": None, "prompt_id": pid}:
                return pid, msgs


async def test_ws_sequences_match_the_recordings(comfy_server):
    normal = [f["msg"] for f in recorded("run", "01_normal", "ws.json")]
    cached = [f["msg"] for f in recorded("run", "02_cached_same", "ws.json")]
    async with aiohttp.ClientSession() as s:
        pid1, first = await run_raw(s, comfy_server, NORMAL_GRAPH)
        pid2, again = await run_raw(s, comfy_server, NORMAL_GRAPH)
        async with s.get(f"{comfy_server.url}/history/{pid2}") as resp:
            history = (await resp.json())[pid2]
    assert shape(first) == shape(normal)
    assert shape(again) == shape(cached)
    # The cached run re-sends the first run's files and writes none.
    executed = [m["data"]["output"] for m in first + again if m["type"] == "executed"]
    assert executed[0] == executed[1] == normal[9]["data"]["output"]
    assert history["outputs"]["2"] == executed[0]
    assert [m[0] for m in history["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert all(m["data"].get("prompt_id") in (None, pid1, pid2) for m in first + again)


async def test_history_entry_shape_matches_the_recording(comfy_server):
    rec = next(iter(recorded("run", "01_normal", "history.json")["json"].values()))
    async with aiohttp.ClientSession() as s:
        pid, _ = await run_raw(s, comfy_server, NORMAL_GRAPH)
        async with s.get(f"{comfy_server.url}/api/history/{pid}") as resp:
            entry = (await resp.json())[pid]
        async with s.get(f"{comfy_server.url}/history", params={"max_items": "1"}) as resp:
            assert list(await resp.json()) == [pid]
    assert entry.keys() == rec.keys() and entry["status"].keys() == rec["status"].keys()
    assert entry["outputs"] == rec["outputs"] and entry["prompt"][2] == rec["prompt"][2] and entry["prompt"][4] == ["2"]


async def test_validation_answers_match_every_recorded_case(comfy_server):
    files = sorted((SAMPLES / "errors").glob("*.json"))
    assert len(files) == 29, f"the recorded validation answers are missing from {SAMPLES / 'errors'}"
    async with aiohttp.ClientSession() as s:
        for f in files:
            sample = json.loads(f.read_text())
            req, want = sample["request"], sample["response"]
            if req["json"] is not None:
                kw: dict[str, Any] = {"json": req["json"]}
            else:
                kw = {"data": req["raw_body"].encode(), "headers": {"Content-Type": "application/json"}}
            async with s.post(f"{comfy_server.url}/prompt", **kw) as resp:
                assert resp.status == want["status"], f.name
                if want["status"] == 500:
                    assert await resp.text() == want["text"], f.name
                    continue
                got = await resp.json()
            w = want["json"]
            assert got.get("node_errors", {}).keys() == w["node_errors"].keys(), f.name
            for nid, info in w["node_errors"].items():
                mine = got["node_errors"][nid]
                assert mine["class_type"] == info["class_type"], f.name
                assert [(e["type"], e["details"]) for e in mine["errors"]] == [
                    (e["type"], e["details"]) for e in info["errors"]], f.name
            if "error" in w:
                assert {k: got["error"][k] for k in ("type", "message", "details")} == {
                    k: w["error"][k] for k in ("type", "message", "details")}, f.name
            if req["json"] and req["json"].get("prompt_id") and want["status"] == 200:
                assert got["prompt_id"] == req["json"]["prompt_id"]
            if req["json"] and "number" in req["json"]:
                assert got["number"] == req["json"]["number"]
            if req["json"] and req["json"].get("front"):
                assert got["number"] < 0


async def test_model_lists_and_object_info(comfy_server):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{comfy_server.url}/object_info/CheckpointLoaderSimple") as resp:
            assert (await resp.json())["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == []
        comfy_server.models["checkpoints"].append("sd_xl_base_1.0.safetensors")
        async with s.get(f"{comfy_server.url}/api/object_info") as resp:
            info = await resp.json()
        assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["sd_xl_base_1.0.safetensors"]
        assert info["VAELoader"]["input"]["required"]["vae_name"][0] == ["pixel_space"]
        assert len(info) == 887
        async with s.get(f"{comfy_server.url}/object_info/NoSuchNode") as resp:
            assert await resp.json() == {}


async def test_view_serves_real_pngs_and_refuses_bad_names(comfy_server):
    async with aiohttp.ClientSession() as s:
        await run_raw(s, comfy_server, NORMAL_GRAPH)
        view = f"{comfy_server.url}/view"
        async with s.get(view, params={"filename": "test_00001_.png", "subfolder": "acc", "type": "output"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
            data = await resp.read()
        with Image.open(io.BytesIO(data)) as im:
            assert im.size == (64, 64) and im.getpixel((0, 0)) == (1, 226, 64)
            assert json.loads(im.text["prompt"]) == NORMAL_GRAPH
        cases = [
            ({"filename": "acc/test_00001_.png"}, 404),  # subfolder must be separate
            ({"filename": "nope.png"}, 404),
            ({"filename": "x.png", "type": "bogus"}, 400),
            ({"filename": "../../etc/passwd"}, 400),
            ({"filename": "/etc/passwd"}, 400),
            ({"filename": "x.png", "subfolder": "../.."}, 403),
            ({"filename": "test_00001_.png [output]", "subfolder": "acc"}, 200),
        ]
        for params, status in cases:
            async with s.get(view, params=params) as resp:
                assert resp.status == status, params


async def test_upload_names_like_comfyui(comfy_server):
    async def up(s, data: bytes, name: str = "acc_up.png", **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="image/png")
        for k, v in fields.items():
            form.add_field(k, v)
        async with s.post(f"{comfy_server.url}/upload/image", data=form) as resp:
            return resp.status, (await resp.json() if resp.status == 200 else await resp.read())

    async with aiohttp.ClientSession() as s:
        assert await up(s, b"one") == (200, {"name": "acc_up.png", "subfolder": "", "type": "input"})
        assert (await up(s, b"one"))[1]["name"] == "acc_up.png"
        assert (await up(s, b"two"))[1]["name"] == "acc_up (1).png"
        assert (await up(s, b"three"))[1]["name"] == "acc_up (2).png"
        assert (await up(s, b"two"))[1]["name"] == "acc_up (1).png"
        assert (await up(s, b"four", overwrite="true"))[1]["name"] == "acc_up.png"
        nested = {"name": "acc_up.png", "subfolder": "accsub", "type": "input"}
        assert (await up(s, b"x", subfolder="accsub"))[1] == nested
        assert await up(s, b"x", subfolder="../../etc") == (400, b"")
        assert (await up(s, b"hello", name="notes.txt"))[1]["name"] == "notes.txt"
        form = aiohttp.FormData()
        form.add_field("file", b"x", filename="a.png")
        async with s.post(f"{comfy_server.url}/upload/image", data=form) as resp:
            assert resp.status == 400
        # LoadImage lists top-level images only and accepts nested names.
        async with s.get(f"{comfy_server.url}/object_info/LoadImage") as resp:
            listed = (await resp.json())["LoadImage"]["input"]["required"]["image"][0]
        assert "acc_up (1).png" in listed and "notes.txt" not in listed and "accsub/acc_up.png" not in listed
        g = {"1": {"class_type": "LoadImage", "inputs": {"image": "accsub/acc_up.png"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "acc/loaded"}}}
        async with s.post(f"{comfy_server.url}/prompt", json={"prompt": g}) as resp:
            assert resp.status == 200


async def test_queue_interrupt_and_reconnect_quirk(comfy_server):
    comfy_server.fault("hang", times=1)
    cid = str(uuid.uuid4())
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{comfy_server.url}/ws", params={"clientId": cid}) as ws1:
            await ws1.receive_json()
            async with s.post(f"{comfy_server.url}/prompt", json={"prompt": NORMAL_GRAPH, "client_id": cid}) as r:
                p1 = (await r.json())["prompt_id"]
            g2 = copy.deepcopy(NORMAL_GRAPH)
            g2["1"]["inputs"]["color"] = 7
            async with s.post(f"{comfy_server.url}/prompt", json={"prompt": g2, "client_id": cid}) as r:
                p2 = (await r.json())["prompt_id"]
            while comfy_server.runner.current_node is None:
                await asyncio.sleep(0.002)
            async with s.get(f"{comfy_server.url}/queue") as r:
                q = await r.json()
            assert [i[1] for i in q["queue_running"]] == [p1] and [i[1] for i in q["queue_pending"]] == [p2]
            assert len(q["queue_running"][0]) == 5
            async with s.get(f"{comfy_server.url}/prompt") as r:
                assert await r.json() == {"exec_info": {"queue_remaining": 2}}
            # Reconnecting with the same clientId mid-run: status, then executing without prompt_id.
            async with s.ws_connect(f"{comfy_server.url}/ws", params={"clientId": cid}) as ws2:
                assert (await ws2.receive_json())["type"] == "status"
                assert await ws2.receive_json() == {"type": "executing", "data": {"node": "1"}}
                async with s.post(f"{comfy_server.url}/queue", json={"delete": [p2]}) as r:
                    assert r.status == 200 and await r.read() == b""
                async with s.post(f"{comfy_server.url}/interrupt", json={"prompt_id": p1}) as r:
                    assert r.status == 200
                kinds = []
                while True:
                    msg = await asyncio.wait_for(ws2.receive_json(), 5)
                    kinds.append(msg["type"])
                    if msg["type"] == "executing" and msg["data"]["node"] is None:
                        break
                assert kinds[-3:] == ["execution_interrupted", "status", "executing"]
        async with s.get(f"{comfy_server.url}/history/{p1}") as r:
            status = (await r.json())[p1]["status"]
        async with s.get(f"{comfy_server.url}/history/{p2}") as r:
            assert await r.json() == {}
    assert status["status_str"] == "error" and status["messages"][-1][0] == "execution_interrupted"
    assert [j["status"] for j in comfy_server.jobs] == ["interrupted", "deleted"]


async def test_execution_error_shape_matches_the_recording(comfy_server):
    rec = next(f["msg"]["data"] for f in recorded("runtime_error", "ws.json") if f["msg"]["type"] == "execution_error")
    comfy_server.fault("execution_error", times=1)
    async with aiohttp.ClientSession() as s:
        _, msgs = await run_raw(s, comfy_server, NORMAL_GRAPH)
    err = next(m["data"] for m in msgs if m["type"] == "execution_error")
    assert err.keys() == rec.keys() and (err["node_id"], err["node_type"]) == ("1", "EmptyImage")
    assert [m["type"] for m in msgs][-3:] == ["execution_error", "status", "executing"]


async def test_outputs_hook_and_video_outputs(comfy_server):
    def frames(graph: dict) -> dict:
        refs = comfy_server.save_outputs("wan/frame", [b"f1", b"f2"])
        return {"2": {"images": refs}}

    video_graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 8, "color": 3368652}},
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "acc/video",
                                                     "format": "auto", "format.codec": "auto"}},
        "4": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0], "filename_prefix": "acc/webm", "codec": "vp9",
                                                    "fps": 8.0, "crf": 32.0}},
    }
    async with aiohttp.ClientSession() as s:
        _, msgs = await run_raw(s, comfy_server, video_graph)
        outs = {m["data"]["node"]: m["data"]["output"] for m in msgs if m["type"] == "executed"}
        assert outs["3"] == {"images": [{"filename": "video_00001_.mp4", "subfolder": "acc", "type": "output"}],
                             "animated": [True]}
        assert outs["4"]["images"][0]["filename"] == "webm_00001_.webm" and outs["4"]["animated"] == [True]
        async with s.get(f"{comfy_server.url}/view", params={"filename": "video_00001_.mp4", "subfolder": "acc"}) as r:
            assert r.headers["Content-Type"] == "video/mp4" and (await r.read())[4:8] == b"ftyp"
        comfy_server.outputs_for = frames
        g = copy.deepcopy(NORMAL_GRAPH)
        g["1"]["inputs"]["color"] = 5
        _, msgs = await run_raw(s, comfy_server, g)
    outs = [m["data"]["output"] for m in msgs if m["type"] == "executed"]
    assert [r["filename"] for r in outs[0]["images"]] == ["frame_00001_.png", "frame_00002_.png"]
    assert comfy_server.store.get("output", "wan", "frame_00002_.png") == b"f2"


async def test_restart_forgets_queue_and_history(comfy_server):
    async with aiohttp.ClientSession() as s:
        pid, _ = await run_raw(s, comfy_server, NORMAL_GRAPH)
        await comfy_server.restart()
        async with s.get(f"{comfy_server.url}/history/{pid}") as r:
            assert await r.json() == {}
        # ... and the cache: the same graph runs again and writes new files.
        _, msgs = await run_raw(s, comfy_server, NORMAL_GRAPH)
    assert next(m for m in msgs if m["type"] == "execution_cached")["data"]["nodes"] == []
    first_file = next(m for m in msgs if m["type"] == "executed")["data"]["output"]["images"][0]
    assert first_file["filename"] == "test_00004_.png"


async def test_cross_origin_post_is_403(comfy_server):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{comfy_server.url}/prompt", json={"prompt": NORMAL_GRAPH},
                          headers={"Origin": "http://evil.example.com"}) as r:
            assert r.status == 403 and await r.read() == b""
    assert comfy_server.jobs == []


def test_thread_mode_for_sync_callers():
    with FakeComfyServer() as srv:
        with urllib.request.urlopen(f"{srv.url}/system_stats", timeout=5) as resp:
            assert json.loads(resp.read())["system"]["comfyui_version"] == "0.33.0"
        req = urllib.request.Request(f"{srv.url}/prompt", data=json.dumps({"prompt": NORMAL_GRAPH}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            pid = json.loads(resp.read())["prompt_id"]
        for _ in range(500):
            if srv.jobs[-1]["status"] == "success":
                break
            time.sleep(0.005)
        assert srv.jobs[-1]["prompt_id"] == pid and srv.jobs[-1]["status"] == "success"
        srv.call(srv.restart())
        assert srv.history == {}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{srv.url}/system_stats", timeout=2)


def _sd15(steps: int) -> dict[str, Any]:
    graph = json.loads((REFERENCE / "sd15_t2i_api.json").read_text(encoding="utf-8"))
    graph["3"]["inputs"]["steps"] = steps
    return graph


def _frame_kind(frame: Any) -> str:
    if "bytes_b64" in frame:
        return f"binary(event {frame['event_type']}, image {frame['image_type']})"
    return frame["text"]["type"]


async def test_preview_frames_match_the_recording(comfy_server):
    """With previews on (``--preview-method auto``), each sampler step's ``progress`` frame is followed by one
    binary PREVIEW_IMAGE frame (event type 1, image type 1 = JPEG), to the prompt's client only."""
    rec = recorded("extra", "10_binary_previews", "ws_plain.json")
    sampler = [_frame_kind(f) for f in rec if _frame_kind(f) in ("progress",) or "bytes_b64" in f]
    assert sampler == ["progress", "binary(event 1, image 1)"] * 3  # the recording: 3 steps
    comfy_server.accept_any_model = True
    comfy_server.preview_frames = True
    cid = str(uuid.uuid4())
    async with aiohttp.ClientSession() as s, \
            s.ws_connect(f"{comfy_server.url}/ws", params={"clientId": cid}) as ws, \
            s.ws_connect(f"{comfy_server.url}/ws", params={"clientId": "someone-else"}) as other:
        await ws.receive_json()
        async with s.post(f"{comfy_server.url}/prompt", json={"prompt": _sd15(3), "client_id": cid}) as resp:
            pid = (await resp.json())["prompt_id"]
        kinds: list[str] = []
        images: list[bytes] = []
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                event, image_type = struct.unpack(">II", msg.data[:8])
                kinds.append(f"binary(event {event}, image {image_type})")
                images.append(msg.data[8:])
                continue
            data = json.loads(msg.data)
            if data["type"] in ("progress",):
                kinds.append(data["type"])
            if data["type"] == "executing" and data["data"] == {"node": None, "prompt_id": pid}:
                break
        # The other client hears its hello and the 3 queue changes (broadcast), and no preview.
        others = [await asyncio.wait_for(other.receive(), 5) for _ in range(4)]
    assert kinds == sampler
    assert comfy_server.binary_sent == 3
    assert [(m.type, json.loads(m.data)["type"]) for m in others] == [(aiohttp.WSMsgType.TEXT, "status")] * 4
    for image in images:
        with Image.open(io.BytesIO(image)) as im:  # a real JPEG, as recorded
            assert im.format == "JPEG"
