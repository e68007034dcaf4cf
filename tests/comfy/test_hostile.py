"""ComfyClient against a hostile fake ComfyUI (issue #11): one test per class of attack.

Each proves the run ends by itself within the documented limit, that memory or disk
stay bounded, that the error names the server and the endpoint, and that nothing
invalid is left at the destination. Waiting uses injected time where the client
waits on its own clock; the download deadline is real loop time, kept sub-second.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path

import pytest
from comfy_helpers import NORMAL_GRAPH

from fakes.comfy_server import FakeComfyServer, load_object_info
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.transport.http import DEFAULT_JSON_LIMITS, MiB
from sceneforge.errors import DownloadError, ServerUnavailableError, TransientError
from sceneforge.retry import is_retryable


def client(srv: FakeComfyServer, t=None, **kw) -> ComfyClient:
    if t is not None:
        kw.setdefault("clock", t.clock)
        kw.setdefault("sleep", t.sleep)
    return ComfyClient(srv.url, **kw)


async def first_image(c: ComfyClient) -> dict:
    result = await c.run(copy.deepcopy(NORMAL_GRAPH))
    return result.images()[0]


class SizeWatch:
    """Samples the size of every file under ``folder`` while a download runs (the .part included)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.biggest, self._task = folder, 0, None

    async def _run(self) -> None:
        while True:
            for f in self.folder.rglob("*"):
                try:
                    self.biggest = max(self.biggest, f.stat().st_size)
                except OSError:
                    pass
            await asyncio.sleep(0.0005)

    async def __aenter__(self) -> SizeWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()


# --- 1. memory: endless or huge JSON ------------------------------------------------------
async def test_endless_json_body_is_cut_at_the_cap(comfy_server):
    comfy_server.fault("json_endless", path="/system_stats")
    async with client(comfy_server, max_json_bytes={"system_stats": 1 * MiB}) as c:
        with pytest.raises(ServerUnavailableError) as ei:
            await c.system_stats()
    msg = str(ei.value)
    # Stopped by the cap (this message), not by the 60 s HTTP timeout (which names no cap).
    assert comfy_server.url in msg and "/system_stats" in msg and "1 MiB" in msg and "max_json_bytes" in msg
    # Memory stays bounded: the client hung up right after the cap (plus what sat in socket buffers).
    assert comfy_server.hostile_sent["json_endless"] < 64 * MiB


async def test_huge_history_answer_ends_the_run(comfy_server, fake_time):
    comfy_server.fault("json_huge", path="/history/", size=4 * MiB)  # every history read
    async with client(comfy_server, fake_time, max_json_bytes={"history": 256 * 1024}, unreachable_after=3) as c:
        with pytest.raises(ServerUnavailableError) as ei:
            await c.run(copy.deepcopy(NORMAL_GRAPH))
    msg = str(ei.value)
    assert comfy_server.url in msg and "GET /history/" in msg and "256 KiB" in msg
    assert is_retryable(ei.value)


async def test_default_json_caps_leave_headroom_over_the_recorded_object_info(comfy_server):
    recorded = len(json.dumps(load_object_info()))  # ComfyUI 0.33.0, 887 classes
    assert 1_000_000 < recorded < DEFAULT_JSON_LIMITS["object_info"] / 20
    async with client(comfy_server) as c:
        assert len(await c.object_info()) >= 887


# --- 2. disk: a download that never ends -----------------------------------------------------
async def test_endless_download_stops_at_the_cap_and_leaves_nothing(comfy_server, tmp_path):
    out = tmp_path / "out"
    async with client(comfy_server, max_download_bytes=1 * MiB) as c:
        ref = await first_image(c)
        comfy_server.fault("view_endless", times=1)
        async with SizeWatch(tmp_path) as watch:
            with pytest.raises(DownloadError) as ei:
                await c.download(ref, out / "scene.png")
    msg = str(ei.value)
    assert comfy_server.url in msg and "/view" in msg and "acc/test_00001_.png" in msg and "1 MiB" in msg
    assert is_retryable(ei.value)
    assert list(out.iterdir()) == []  # neither the file nor its .part
    assert watch.biggest <= 1 * MiB  # the partial file never grew past the cap
    assert comfy_server.hostile_sent["view_endless"] < 64 * MiB


async def test_announced_oversize_is_refused_before_reading(comfy_server, tmp_path):
    big = b"\x89PNG\r\n\x1a\n" + bytes(3 * MiB)
    ref = comfy_server.add_file("big_00001_.png", big)
    async with client(comfy_server, max_download_bytes=1 * MiB) as c:
        with pytest.raises(DownloadError, match="announced 3 MiB"):
            await c.download(ref, tmp_path / "big.png")
    assert list(tmp_path.iterdir()) == []


# --- 3. time: a download that trickles forever -------------------------------------------------
async def test_trickling_download_hits_the_overall_deadline(comfy_server, tmp_path, deadlines):
    async with client(comfy_server, download_timeout=0.2) as c:
        ref = await first_image(c)
        comfy_server.fault("view_trickle", times=1, interval=0.01)  # ~100 bytes/s: each resets sock_read
        with pytest.raises(DownloadError) as ei:
            await c.download(ref, tmp_path / "scene.png")
    msg = str(ei.value)
    assert comfy_server.url in msg and "/view" in msg and "within 0.2 s" in msg and "comfy_download_timeout" in msg
    # The download's own overall deadline is what ended it, however often the trickle reset the read timeout.
    assert deadlines.armed[-1] == ("sceneforge.comfy.transport.download", 0.2) and deadlines.expired()[-1] is True
    assert is_retryable(ei.value)
    assert list(tmp_path.iterdir()) == []
    assert comfy_server.hostile_sent["view_trickle"] < len(comfy_server.store.get("output", "acc", ref["filename"]))


# --- 4. content: answers that are not the file ----------------------------------------------------
@pytest.mark.parametrize("fault", ["view_html", "view_short_png"])
async def test_broken_image_is_not_kept(comfy_server, tmp_path, fault):
    async with client(comfy_server) as c:
        ref = await first_image(c)
        comfy_server.fault(fault, times=1)
        with pytest.raises(DownloadError) as ei:
            await c.download(ref, tmp_path / "image_scene_1.png")
        msg = str(ei.value)
        assert comfy_server.url in msg and "/view" in msg and "not a valid image" in msg
        assert is_retryable(ei.value) and list(tmp_path.iterdir()) == []
        # The next attempt gets the real file.
        dest = await c.download(ref, tmp_path / "image_scene_1.png")
    assert dest.read_bytes() == comfy_server.store.get("output", "acc", ref["filename"])


async def test_broken_video_is_not_kept(comfy_server, tmp_path):
    (ref,) = comfy_server.save_outputs("wan/clip", [b"<html>not a video</html>"], "mp4")
    async with client(comfy_server) as c:
        with pytest.raises(DownloadError, match="not a valid video") as ei:
            await c.download(ref, tmp_path / "motion.mp4")
    assert comfy_server.url in str(ei.value) and list(tmp_path.iterdir()) == []


async def test_real_video_and_unknown_kinds_are_kept(comfy_server, tmp_path):
    from fakes.comfy_outputs import video_stub

    (clip,) = comfy_server.save_outputs("wan/clip", [video_stub("webm")], "webm")
    (text,) = comfy_server.save_outputs("misc/note", [b"not an image, and not claiming to be"], "txt")
    async with client(comfy_server) as c:
        assert (await c.download(clip, tmp_path / "m.webm")).stat().st_size > 0
        assert (await c.download(text, tmp_path / "n.txt")).read_bytes().startswith(b"not an image")


# --- 6. a websocket that never stops talking ------------------------------------------------------
async def test_status_flood_does_not_starve_completion(comfy_server, fake_time):
    comfy_server.fault("ws_flood", times=1)  # status frames without pause, forever
    comfy_server.fault("ws_silent", times=1)  # and the job's own messages never arrive
    events: list[str] = []
    start = fake_time.now
    async with client(comfy_server, fake_time, ws_idle_timeout=5, poll_interval=1, timeout=300) as c:
        result = await c.run(copy.deepcopy(NORMAL_GRAPH), on_event=lambda k, d: events.append(k))
    assert len(result.images()) == 3
    assert "polling" in events
    assert fake_time.now - start <= 5 + 2  # one idle period (+ a tick), not the 3000 s queued deadline
    assert comfy_server.hostile_sent["ws_flood"] > 10


# --- 9. a cancel that fails is an event, not a stray log line ------------------------------------
async def test_failed_cancel_is_a_warning_event(dead_url, caplog):
    events: list[tuple[str, dict]] = []
    caplog.set_level(logging.DEBUG, logger="sceneforge")
    async with ComfyClient(dead_url) as c:
        ok = await c.cancel_quietly("p-1", on_event=lambda k, d: events.append((k, d)))
    assert ok is False
    ((kind, data),) = events
    assert kind == "warning" and data["prompt_id"] == "p-1"
    assert "could not cancel job p-1" in data["message"] and dead_url in data["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_unreachable_download_is_transient_not_a_disk_error(dead_url, tmp_path):
    async with ComfyClient(dead_url) as c:
        with pytest.raises(ServerUnavailableError):
            await c.download({"filename": "a.png", "subfolder": "", "type": "output"}, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_limits_are_constructor_options_with_documented_defaults():
    c = ComfyClient("http://h:1")
    assert c.max_download_bytes == 1024 * MiB and c.download_timeout == 600 and c.verify_downloads
    assert c.json_limit("object_info") == 64 * MiB and c.json_limit("history/abc") == 32 * MiB
    assert c.json_limit("system_stats") == 1 * MiB
    one = ComfyClient("http://h:1", max_json_bytes=1234)
    assert one.json_limit("object_info") == one.json_limit("anything") == 1234
    assert issubclass(DownloadError, TransientError)


# --- 4b. a small file that declares a huge canvas (a decompression bomb) -----------------------------
async def test_a_png_declaring_a_huge_canvas_is_refused_before_it_is_decoded(comfy_server, tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # ~20 KB on the wire, 144 megapixels once decoded
    ref = comfy_server.add_file("bomb_00001_.png", buf.getvalue())
    async with client(comfy_server) as c:
        with pytest.raises(DownloadError, match="more pixels than an image may have") as ei:
            await c.download(ref, tmp_path / "image_scene_1.png")
    assert is_retryable(ei.value) and list(tmp_path.iterdir()) == []
