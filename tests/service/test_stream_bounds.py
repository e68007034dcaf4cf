"""Issue #17, item 3: a replay streams the events file in bounded chunks off the loop; a client that stops
reading is dropped after the send timeout; others are never held up meanwhile."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

from service_helpers import decoded, kept_events, offline, topic

from sceneforge.service.eventlog import CHUNK, EventReader


def _fill(path: Path, count: int, pad: int = 400) -> None:
    """An events file of ``count`` events of about ``pad`` bytes each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for i in range(1, count + 1):
            fh.write(json.dumps({"id": i, "kind": "job_progress", "data": {"x": "p" * pad}}).encode() + b"\n")


def test_a_reader_bisects_to_its_start_and_reads_bounded_chunks(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    _fill(path, 20_000)  # about 8.5 MB
    reader = EventReader(path, after=19_990)
    assert reader._fh is not None and reader._fh.tell() > path.stat().st_size - 2 * CHUNK  # did not read it all
    assert [e["id"] for e in decoded(reader.messages()) or []] == list(range(19_991, 20_001))
    assert reader.messages() is None
    reader.close()
    reader = EventReader(path, after=0)
    sizes = []
    while (events := decoded(reader.messages())) is not None:
        sizes.append(len(events))
    reader.close()
    assert sum(sizes) == 20_000 and max(sizes) * 450 < 2 * CHUNK  # never more than about a chunk at a time
    with path.open("ab") as fh:
        fh.write(b'{"id": 20001, "kind": "cut sh')  # a crash mid-line
    assert [e["id"] for e in kept_events(path, after=19_999)] == [20_000]


def _stalled_client(port: int, slug: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/topics/{slug}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock  # never read


async def test_clients_that_stop_reading_are_dropped_and_never_hold_up_others(start, tmp_path: Path):
    svc = await start(offline(tmp_path), send_timeout=0.3)
    await svc.submit(topic("long", 1))
    await svc.wait("long")
    path = svc.out / "long" / ".sceneforge" / "service" / "events.jsonl"
    last = svc.service.store.last_event_id("long")
    # 10 MB of history (ids from 1): more than the kernel buffers a connection (4 MB at most here).
    _fill(path, 10_000, pad=1000)
    svc.service.jobs.records["long"].last_event_id = max(last, 10_000)
    port = int(svc.url.rsplit(":", 1)[1])
    clients = [_stalled_client(port, "long") for _ in range(4)]
    try:
        for _ in range(200):  # until each stalled stream is listening (each subscribes first)
            if svc.service.hub.listeners("long") == 4:
                break
            await asyncio.sleep(0.01)
        assert svc.service.hub.listeners("long") == 4
        waits = []
        for _ in range(5):
            began = time.perf_counter()
            assert (await svc.call("GET", "/api/health"))[0] == 200
            waits.append(time.perf_counter() - began)
        assert max(waits) < 1.0, waits  # (a whole-file replay on the loop blocked it for seconds)
        for _ in range(500):  # the send timeout drops them: their writes waited 0.3 s
            if svc.service.hub.listeners("long") == 0:
                break
            await asyncio.sleep(0.01)
        assert svc.service.hub.listeners("long") == 0
        # A client that reads gets everything, in order.
        events = await svc.stream("long", after=9_990, until_idle=True)
        assert [e["id"] for e in events] == list(range(9_991, 10_001))
    finally:
        for sock in clients:
            sock.close()
