"""Issue #17, items 5, 6, 8, 9, 10, 11: no topic left stuck, a restart resumes every unfinished topic in
order, event ids never go back, Unicode-equal titles are one topic, no server paths in answers, no topic
folder that is a link, and Range headers RFC 9110 says to ignore are ignored."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from service_helpers import offline, statuses, topic

from sceneforge.service.models import JobSpec, JobStatus
from sceneforge.service.store import TopicRecord, TopicStore

OPTION_STRINGS = {"negative": "\ud800", "webhook_url": "http://example.com/\ud800", "prompt_node": "\udfff",
                  "tts": "espeak\ud800", "stages": ["audio", "\ud800"]}


async def test_a_lone_surrogate_in_any_option_is_422_and_nothing_is_written(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    for name, value in OPTION_STRINGS.items():
        raw = json.dumps({**topic("stuck", 1), "options": {name: value}}).encode()  # \ud800 escaped in JSON
        status, body = await svc.call("POST", "/api/topics", data=raw)
        assert status == 422 and body["problems"][0].startswith(f"options.{name}: contains an unpaired surrogate"), \
            (name, body)
    raw = json.dumps({**topic("stuck", 1), "options": {"\ud800": 1}}).encode()
    assert (await svc.call("POST", "/api/topics", data=raw))[0] == 422
    assert not (svc.out / "stuck").exists()
    assert (await svc.call("GET", "/api/topics"))[1] == []


async def test_an_unexpected_error_leaves_a_topic_that_can_be_cancelled_and_deleted(start, tmp_path: Path,
                                                                                    monkeypatch):
    svc = await start(offline(tmp_path, serve_concurrency=1))

    def boom(*args, **kwargs):
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr(svc.service.jobs, "_enqueue", boom)
    status, body = await svc.call("POST", "/api/topics", body=topic("fresh", 1))
    assert status == 500
    assert not (svc.out / "fresh").exists()  # all or nothing: no folder, no state
    monkeypatch.undo()
    await svc.submit(topic("fresh", 1))
    await svc.wait("fresh")
    # A status that says queued with no job behind it (as an unexpected error could leave): not stuck.
    record = svc.service.jobs.get("fresh")
    record.status = JobStatus.QUEUED
    assert (await svc.call("POST", "/api/topics/fresh/cancel"))[0] == 200
    assert (await svc.call("DELETE", "/api/topics/fresh"))[0] == 200


def _left(out: Path, slug: str, status: JobStatus, queued_at: str, was: str | None = None) -> None:
    root = out / slug
    root.mkdir(parents=True)
    (root / "scenes.json").write_text(json.dumps(topic(slug, 1)))
    TopicStore(out).save(TopicRecord(slug, slug, status, job=JobSpec("run"), options={"stages": ["audio"]},
                                     queued_at=queued_at, interrupted_from=was))


async def test_a_restart_resumes_running_topics_first_then_queued_in_order_and_none_stays_interrupted(
        start, tmp_path: Path):
    out = tmp_path / "out"
    # As a stop leaves them (interrupted, with what they were doing) and as a kill leaves them (unchanged),
    # more than --max-queued of them.
    _left(out, "q-late", JobStatus.INTERRUPTED, "2026-01-01T00:00:09.000Z", "queued")
    _left(out, "r-killed", JobStatus.RUNNING, "2026-01-01T00:00:05.000Z")
    _left(out, "q-early", JobStatus.QUEUED, "2026-01-01T00:00:02.000Z")
    _left(out, "r-stopped", JobStatus.INTERRUPTED, "2026-01-01T00:00:07.000Z", "running")
    _left(out, "q-mid", JobStatus.INTERRUPTED, "2026-01-01T00:00:04.000Z", "queued")
    svc = await start(offline(tmp_path, serve_concurrency=1, serve_max_queued=2))
    order = [slug for slug, _ in svc.service.jobs._queue]
    running = list(svc.service.jobs._running)
    assert running + order == ["r-killed", "r-stopped", "q-early", "q-mid", "q-late"][:len(running + order)]
    for slug in ("q-late", "r-killed", "q-early", "r-stopped", "q-mid"):
        assert (await svc.wait(slug))["status"] == "done", slug
    starts = {slug: next(e["id"] for e in await svc.stream(slug) if e["kind"] == "status"
                         and e["data"]["status"] == "running") for slug in order + running}
    assert len(starts) == 5


async def test_event_ids_of_a_slug_keep_increasing_across_deletion(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("again", 1))
    await svc.wait("again")
    last = (await svc.call("GET", "/api/topics/again"))[1]["last_event_id"]
    assert (await svc.call("DELETE", "/api/topics/again"))[0] == 200
    await svc.submit(topic("again", 1))
    events = await svc.stream("again", last_event_id=last)  # what a reconnecting client asks
    assert events and events[0]["id"] == last + 2 and statuses(events)[-1] == "done"  # (last + 1: "deleted")
    # A restarted service knows it too.
    await svc.stop()
    again = await start(offline(tmp_path))
    assert again.service.store.last_event_id("again") == events[-1]["id"]


async def test_unicode_equal_titles_are_one_topic(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    nfc = "한국 이야기"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    first = await svc.submit(topic(nfc, 1))
    await svc.wait(first["slug"])
    second = await svc.submit(topic(nfd, 1))  # was 409: "holds the topic '한국 이야기'"
    assert second["slug"] == first["slug"]
    state = await svc.wait(second["slug"])
    assert state["topic"] == nfc


async def test_answers_name_no_path_of_the_services_machine(start, tmp_path: Path):
    svc = await start(offline(tmp_path.resolve()))
    await svc.submit(topic("where", 2))
    state = await svc.wait("where")
    text = json.dumps(state)
    assert str(tmp_path) not in text
    assert state["scenes"][0]["audio_path"] == "where/audio_scene_1.mp3"
    assert state["scenes"][0]["urls"]["audio"] == "/files/where/audio_scene_1.mp3"
    status, served = await svc.call("GET", "/files/where/scenes.json")
    assert status == 200 and str(tmp_path).encode() not in json.dumps(served).encode()
    assert served["scenes"][0]["image_path"] == "where/image_scene_1.png"
    assert str(tmp_path) in (svc.out / "where" / "scenes.json").read_text()  # the CLI's own file is unchanged


async def test_a_topic_folder_that_is_a_link_is_neither_listed_nor_served(start, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "scenes.json").write_text(json.dumps(topic("evil", 1)))
    (outside / "hostname").write_text("secret-host")
    svc = await start(offline(tmp_path))
    os.symlink(outside, svc.out / "evil")
    assert (await svc.call("GET", "/files/evil/hostname"))[0] == 404
    assert (await svc.call("GET", "/files/evil/scenes.json"))[0] == 404
    assert (await svc.call("GET", "/api/topics/evil"))[0] == 404
    assert [t["slug"] for t in (await svc.call("GET", "/api/topics"))[1]] == []


async def test_range_headers_to_ignore_give_the_whole_file(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("ranged", 1))
    await svc.wait("ranged")
    whole = (svc.out / "ranged" / "image_scene_1.png").read_bytes()
    for value in ("items=0-1", "bytes=5-1", "bytes=", "bytes=-", "bytes=a-b"):
        status, body = await svc.call("GET", "/files/ranged/image_scene_1.png", headers={"Range": value})
        assert status == 200 and body == whole, value
    status, body = await svc.call("GET", "/files/ranged/image_scene_1.png", headers={"Range": "bytes=1-4"})
    assert status == 206 and body == whole[1:5]


async def test_review_findings_hold(start, tmp_path: Path):
    """The hostile review's findings: IPv6 forms that carry a private IPv4 address, uploads through a linked
    folder, pixel data that does not decode, repeated Origin headers, absurdly many scenes."""
    import io

    from PIL import Image

    svc = await start(offline(tmp_path, serve_max_scenes=50))
    for url in ("http://[64:ff9b::7f00:1]/x", "http://[64:ff9b:1::a00:1]/x", "http://[::127.0.0.1]/x",
                "http://[2002:7f00:1::]/x", "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x"):
        body = await svc.submit({**topic("v6", 1), "options": {"webhook_url": url}}, expect=422)
        assert "loopback, private" in body["detail"], (url, body)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, svc.out / "linked")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    png = buf.getvalue()
    status, _ = await svc.call("POST", "/api/topics/linked/references", data=png, headers={"Content-Type": "image/png"})
    assert status == 422 and not any(outside.iterdir())
    assert (await svc.call("DELETE", "/api/topics/linked"))[0] == 404 and (svc.out / "linked").is_symlink()
    broken = _png_with_garbage_pixels()  # every chunk's checksum right, its pixel data no zlib stream
    status, body = await svc.call("POST", "/api/topics/t/references", data=broken, headers={"Content-Type": "image/png"})
    assert status == 422 and "not an image" in body["detail"]
    async with svc.http.post(svc.url + "/api/topics", json=topic("two", 1),
                             headers=[("Origin", "http://evil.example"), ("Origin", svc.url)]) as resp:
        assert resp.status == 400 and "repeated" in (await resp.json())["detail"]
    body = await svc.submit(topic("many", 51), expect=422)
    assert "at most 50 (serve_max_scenes)" in body["detail"]


def _png_with_garbage_pixels() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"not zlib at all" * 4) + chunk(b"IEND", b"")
