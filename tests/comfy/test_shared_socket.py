"""One websocket per ComfyClient (issue #10): shared by its jobs, reconnected once for all of them."""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest
from comfy_helpers import NORMAL_GRAPH

from fakes.comfy_server import FakeComfyServer
from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.protocol.watch import Message, SocketUp
from sceneforge.comfy.transport.socket import SharedSocket


def graph(color: int) -> dict:
    g = copy.deepcopy(NORMAL_GRAPH)
    g["1"]["inputs"]["color"] = color
    g["2"]["inputs"]["filename_prefix"] = f"acc/c{color}"
    return g


async def test_jobs_share_one_socket_and_never_poll_when_it_is_healthy(comfy_server):
    comfy_server.job_time = 0.01
    async with ComfyClient(comfy_server.url) as c:
        results = await asyncio.gather(*(c.run(graph(i)) for i in range(4)))
        results.append(await c.run(graph(99)))  # a later job reuses the open socket: no handshake
    assert len(comfy_server.ws_connects) == 1
    assert {p["client_id"] for p in comfy_server.prompts} == {c.client_id}
    assert [len(r.images()) for r in results] == [3] * 5
    # One history read per job, at its end, and no /queue polling at all.
    assert sorted(pid for pid, _ in comfy_server.history_requests) == sorted(r.prompt_id for r in results)
    assert all(found for _, found in comfy_server.history_requests)
    assert not any(r["path"] == "/queue" for r in comfy_server.requests)


async def test_drop_reconnects_once_and_every_job_polls_once(comfy_server):
    comfy_server.job_time = 0.05
    comfy_server.fault("ws_drop", times=1, pause=0.05)
    events: dict[str, list[str]] = {}
    async with ComfyClient(comfy_server.url, poll_interval=0.02) as c:
        async def job(i: int):
            return await c.run(graph(i), on_event=lambda k, d: events.setdefault(d["prompt_id"], []).append(k))
        results = await asyncio.gather(*(job(i) for i in range(3)))
    assert [len(r.images()) for r in results] == [3, 3, 3]
    assert len(comfy_server.ws_connects) == 2  # one reconnect for all jobs, not one per job
    assert {w["client_id"] for w in comfy_server.ws_connects} == {c.client_id}
    for r in results:
        assert events[r.prompt_id].count("ws_reconnected") == 1
    assert len(comfy_server.jobs) == 3


async def test_resume_under_another_client_id_uses_a_socket_of_that_id_and_closes_it(comfy_server):
    comfy_server.job_time = 0.1
    old_id, pid = "an-earlier-process", str(uuid.uuid4())
    async with ComfyClient(comfy_server.url) as first:
        await first.submit(graph(5), client_id=old_id, prompt_id=pid)
    events: list[str] = []
    async with ComfyClient(comfy_server.url, poll_interval=1000) as c:  # no polling: the socket tells the end
        result = await c.resume(pid, old_id, on_event=lambda k, d: events.append(k))
        for _ in range(200):  # the server notices the close a moment later
            if old_id not in comfy_server.sockets:
                break
            await asyncio.sleep(0.005)
        assert old_id not in comfy_server.sockets  # closed once the job is over, while the client lives on
    assert result is not None and len(result.images()) == 3
    assert events[0] == "resumed" and "executed" in events
    assert [w["client_id"] for w in comfy_server.ws_connects] == [old_id]
    # One look at the start (still running), one at its end: told by the socket, not found by polling.
    assert [ok for p, ok in comfy_server.history_requests if p == pid] == [False, True]


async def test_jobs_of_one_earlier_client_id_resumed_at_once_share_its_socket(comfy_server):
    """ComfyUI drops a clientId when any of its sockets closes: a socket per resumed job would leave
    the later jobs deaf once the first one ended (they were then found only by the idle fallback)."""
    comfy_server.job_time = 0.1
    old_id, pids = "an-earlier-process", [str(uuid.uuid4()) for _ in range(3)]
    async with ComfyClient(comfy_server.url) as first:
        for i, pid in enumerate(pids):
            await first.submit(graph(10 + i), client_id=old_id, prompt_id=pid)
    async with ComfyClient(comfy_server.url, poll_interval=1000, ws_idle_timeout=60) as c:
        results = await asyncio.wait_for(asyncio.gather(*(c.resume(pid, old_id) for pid in pids)), 10)
    assert [len(r.images()) for r in results if r is not None] == [3, 3, 3]
    assert [w["client_id"] for w in comfy_server.ws_connects] == [old_id]  # one socket for the three


async def test_resume_under_its_own_client_id_uses_the_shared_socket(comfy_server):
    comfy_server.job_time = 0.05
    async with ComfyClient(comfy_server.url, poll_interval=1000) as c:
        pid = str(uuid.uuid4())
        await c.submit(graph(6), client_id=c.client_id, prompt_id=pid)
        result = await c.resume(pid, c.client_id)
    assert result is not None and len(result.images()) == 3
    assert [w["client_id"] for w in comfy_server.ws_connects] == [c.client_id]


async def test_frames_that_arrive_before_a_job_registers_are_replayed():
    sock = SharedSocket("cid", open_ws=None, clock=lambda: 5.0)  # type: ignore[arg-type]
    other = sock.register("B")
    sock._dispatch('{"type": "execution_start", "data": {"prompt_id": "A"}}')
    sock._dispatch('{"type": "status", "data": {"status": {}}}')
    sock._dispatch("not json")
    late = sock.register("A")
    alive, items = late.take()
    assert alive is None and items == [Message({"type": "execution_start", "data": {"prompt_id": "A"}})]
    alive, items = other.take()  # B only learnt that the socket is alive, with the time it was
    assert items == [] and alive == (Message({"type": "status", "data": {"status": {}}}), 5.0)
    other.push(SocketUp())
    assert other.take() == (None, [SocketUp()])


# The first loop's session cannot be closed from the second; aiohttp says so when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_client_reused_under_a_new_event_loop_reconnects():
    """Sync wrappers run one event loop per call: the socket and session of a finished loop are replaced."""
    with FakeComfyServer() as srv:
        c = ComfyClient(srv.url)
        first = asyncio.run(c.run(graph(1)))
        second = asyncio.run(c.run(graph(2)))
        asyncio.run(c.aclose())
    assert len(first.images()) == len(second.images()) == 3
    assert [w["client_id"] for w in srv.ws_connects] == [c.client_id] * 2
