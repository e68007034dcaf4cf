"""Server-Sent Events: live delivery, ``Last-Event-ID`` replay from the topic's events file, ids that keep
increasing across restarts, keep-alives, the end of a deleted topic's stream; and the hub and store
underneath (a slow listener is dropped, a long history is compacted)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from service_helpers import kept_events, kinds, offline, statuses, topic

from sceneforge.service.events import MAX_BACKLOG, EventHub, sse_stream
from sceneforge.service.store import TopicStore


async def test_a_listener_gets_the_run_live_then_the_stream_stays_open(start):
    svc = await start()
    await svc.submit(topic("live", 1))
    done = await svc.wait("live")
    # connected while idle, before the next job: it hears that job as it happens, then keeps listening
    listener = asyncio.ensure_future(svc.stream("live", after=done["last_event_id"], until_idle=False,
                                                stop=lambda e: e["data"].get("status") == "done"))
    while svc.service.hub.listeners("live") == 0:
        await asyncio.sleep(0)
    await svc.call("PATCH", "/api/topics/live/scenes/1", body={"script": "Changed."})
    events = await asyncio.wait_for(listener, 30)
    assert kinds(events)[0] == "scene_edited" and kinds(events)[-1] == "status:done"
    assert statuses(events) == ["queued", "running", "done"] and events[0]["id"] == done["last_event_id"] + 1


async def test_last_event_id_replays_exactly_what_was_missed(start):
    svc = await start()
    await svc.submit(topic("replay", 2))
    everything = await svc.stream("replay")
    assert len(everything) > 10
    middle = everything[len(everything) // 2]["id"]
    assert await svc.stream("replay", last_event_id=middle) == [e for e in everything if e["id"] > middle]
    assert await svc.stream("replay", after=middle) == [e for e in everything if e["id"] > middle]
    assert await svc.stream("replay", last_event_id=everything[-1]["id"]) == []
    lines = (svc.out / "replay" / ".sceneforge" / "service" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == everything


async def test_event_ids_keep_increasing_across_a_restart(start, tmp_path: Path):
    settings = offline(tmp_path)
    first = await start(settings)
    await first.submit(topic("ids", 1))
    before = await first.stream("ids")
    await first.stop()
    second = await start(settings)
    status, state = await second.call("GET", "/api/topics/ids")
    assert state["last_event_id"] == before[-1]["id"]
    await second.call("PATCH", "/api/topics/ids/scenes/1", body={"script": "Again."})
    after = await second.stream("ids", last_event_id=before[-1]["id"])
    assert after and after[0]["id"] == before[-1]["id"] + 1
    assert [e["id"] for e in after] == list(range(after[0]["id"], after[-1]["id"] + 1))


async def test_keep_alive_comments_flow_while_nothing_happens(start, tmp_path: Path):
    svc = await start(keepalive=0.01)
    await svc.submit(topic("quiet", 1))
    await svc.wait("quiet")
    comments = 0
    async with svc.http.get(f"{svc.url}/api/topics/quiet/events", params={"after": "999"}) as resp:
        assert resp.headers["Cache-Control"] == "no-cache"
        async for raw in resp.content:
            if raw.startswith(b": keep-alive"):
                comments += 1
                if comments == 2:
                    break
    assert comments == 2


async def test_deleting_a_topic_ends_its_streams_with_a_deleted_event(start):
    svc = await start()
    await svc.submit(topic("bye", 1))
    done = await svc.wait("bye")
    listener = asyncio.ensure_future(svc.stream("bye", after=done["last_event_id"], until_idle=False))
    while svc.service.hub.listeners("bye") == 0:
        await asyncio.sleep(0)
    assert (await svc.call("DELETE", "/api/topics/bye"))[0] == 200
    events = await asyncio.wait_for(listener, 10)
    assert kinds(events) == ["deleted"] and events[0]["id"] == done["last_event_id"] + 1


async def test_stopping_the_service_ends_open_streams(start):
    svc = await start()
    await svc.submit(topic("open", 1))
    await svc.wait("open")
    listener = asyncio.ensure_future(svc.stream("open", after=10_000, until_idle=False))
    while svc.service.hub.listeners("open") == 0:
        await asyncio.sleep(0)
    await asyncio.wait_for(svc.stop(), 10)  # uvicorn would otherwise wait for the stream to end
    assert listener.done()


async def test_a_listener_too_slow_to_keep_up_is_dropped_and_can_replay(tmp_path: Path):
    """Dropped at MAX_BACKLOG waiting events, the listener keeps what it had; reconnecting after the last id it
    got (as EventSource does with Last-Event-ID), it is sent exactly the events it missed, from the file."""
    hub, store = EventHub(), TopicStore(tmp_path)
    (tmp_path / "t").mkdir()
    sub = hub.subscribe("t")
    total = MAX_BACKLOG + 5
    for i in range(1, total + 1):
        event = {"id": i, "kind": "job_progress"}
        store.append_event("t", event)  # as the job queue does: the file first, then the live listeners
        hub.publish("t", event)
    assert hub.listeners("t") == 0
    assert sub.queue.qsize() == MAX_BACKLOG + 1  # everything it had, then the end of its stream
    got = [sub.queue.get_nowait() for _ in range(MAX_BACKLOG + 1)]
    assert got[-1]["kind"] == "__close__" and [e["id"] for e in got[:-1]] == list(range(1, MAX_BACKLOG + 1))

    again = sse_stream("t", got[-2]["id"], store, hub, idle=lambda: True, until_idle=True)
    body = b"".join([chunk async for chunk in again])  # (a replay sends a chunk of messages per write)
    replayed = [json.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert [e["id"] for e in replayed] == list(range(MAX_BACKLOG + 1, total + 1))


def test_a_long_history_keeps_its_newer_half_and_its_ids(tmp_path: Path):
    store = TopicStore(tmp_path)
    (tmp_path / "t").mkdir()
    for i in range(1, 2001):
        store.append_event("t", {"id": i, "kind": "job_progress", "data": {"pad": "x" * 40}})
    path = tmp_path / "t" / ".sceneforge" / "service" / "events.jsonl"
    store.compact_events("t", limit=path.stat().st_size // 2)
    kept = kept_events(store.events_path("t"))
    assert 400 < len(kept) < 1000 and kept[-1]["id"] == 2000
    assert [e["id"] for e in kept] == list(range(kept[0]["id"], 2001))
    assert store.last_event_id("t") == 2000
    with path.open("a") as fh:
        fh.write('{"id": 2001, "kind": "cut sho')  # a line a crash cut short is skipped
    assert kept_events(store.events_path("t"), after=1999) == [kept[-1]] and store.last_event_id("t") == 2000


def test_a_scan_reads_the_deleted_topics_ids_once_and_keeps_each_topics_count(tmp_path: Path, monkeypatch):
    store = TopicStore(tmp_path)
    for i in range(20):
        (tmp_path / f"t{i}").mkdir()
        (tmp_path / f"t{i}" / "scenes.json").write_text(json.dumps({"topic": f"T {i}", "scenes": [{"script": "a"}]}))
    store.events.remember("t3", 41)  # a topic of that name was deleted at event 41
    store.append_event("t5", {"id": 7, "kind": "status", "data": {}})
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    records = {r.slug: r for r in store.scan()}
    assert len(records) == 20 and records["t3"].last_event_id == 41 and records["t5"].last_event_id == 7
    assert records["t0"].last_event_id == 0 and records["t0"].topic == "T 0" and records["t0"].scene_count == 1
    assert [p.name for p in reads].count("event-ids.json") == 1  # was once per topic
