"""The server pool: least-busy leasing, priorities, failover and recovery (fake clients, no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from sceneforge.comfy.pool.pool import PRIORITY_IMAGE, PRIORITY_MOTION, ComfyPool
from sceneforge.config import redact_url
from sceneforge.errors import ServerUnavailableError, TransientError


class FakeClient:
    def __init__(self, url: str, up: bool = True) -> None:
        self.url = url
        self.up = up
        self.closed = False
        self.ran: list[str] = []
        self.keep_abandoned_jobs = False

    async def system_stats(self) -> dict:
        if not self.up:
            raise ServerUnavailableError(f"{redact_url(self.url)}: connection refused")
        return {"system": {}}

    async def aclose(self) -> None:
        self.closed = True


class Gate:
    """A sleep that waits until the test opens it, so probes never spin or sleep for real."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)
        await self.event.wait()
        self.event.clear()


async def test_start_needs_one_server():
    pool = ComfyPool([FakeClient("http://a", up=False), FakeClient("http://u:secret@b", up=False)], sleep=Gate())
    with pytest.raises(ServerUnavailableError) as ei:
        await pool.start()
    assert "http://a" in str(ei.value) and "secret" not in str(ei.value)
    await pool.aclose()


async def test_least_busy_and_depth():
    a, b = FakeClient("http://a"), FakeClient("http://b")
    pool = ComfyPool([a, b], depth=2, sleep=Gate())
    await pool.start()
    release = asyncio.Event()
    placed: list[str] = []

    async def job(client):
        placed.append(client.url)
        await release.wait()
        return client.url

    tasks = [asyncio.create_task(pool.run(job)) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    # 2 servers x depth 2 = 4 running; they alternate; the 5th waits
    assert placed == ["http://a", "http://b", "http://a", "http://b"]
    release.set()
    assert sorted(await asyncio.gather(*tasks)).count("http://a") >= 2
    await pool.aclose()
    assert a.closed and b.closed


async def test_motion_waiters_go_first():
    c = FakeClient("http://a")
    pool = ComfyPool([c], depth=1, sleep=Gate())
    await pool.start()
    order: list[str] = []
    gate = asyncio.Event()

    async def blocker(client):
        await gate.wait()

    def job(name):
        async def run(client):
            order.append(name)
        return run

    first = asyncio.create_task(pool.run(blocker))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(pool.run(job("image2"), priority=PRIORITY_IMAGE)),
               asyncio.create_task(pool.run(job("image3"), priority=PRIORITY_IMAGE))]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(pool.run(job("motion1"), priority=PRIORITY_MOTION)))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *waiting)
    assert order == ["motion1", "image2", "image3"]
    await pool.aclose()


async def test_failover_and_recovery():
    a, b = FakeClient("http://a"), FakeClient("http://b")
    gate = Gate()
    changes: list[tuple[str, str]] = []
    pool = ComfyPool([a, b], depth=2, sleep=gate, on_change=lambda what, s: changes.append((what, s.name)))
    await pool.start()

    async def job(client):
        if not client.up:
            raise ServerUnavailableError(f"{client.url} stopped answering")
        client.ran.append("job")
        return client.url

    a.up = False
    moved: list[str] = []
    assert await pool.run(job, on_failover=lambda s, e: moved.append(s.name)) == "http://b"
    assert moved == ["http://a"] and changes == [("down", "http://a")]
    assert not pool.servers[0].healthy
    # while a is down every job goes to b
    assert {await pool.run(job) for _ in range(3)} == {"http://b"}
    # a comes back: the probe notices on its next tick
    a.up = True
    gate.event.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert pool.servers[0].healthy and changes[-1] == ("up", "http://a")
    assert "http://a" in {await pool.run(job) for _ in range(2)}
    await pool.aclose()


async def test_all_down_raises_and_other_errors_pass_through():
    a = FakeClient("http://a")
    pool = ComfyPool([a], sleep=Gate(), outage_grace=0)
    await pool.start()

    async def bad_job(client):
        raise TransientError("500 on /prompt")

    with pytest.raises(TransientError):
        await pool.run(bad_job)
    assert pool.servers[0].healthy  # a bad job is not a dead server

    async def dead(client):
        raise ServerUnavailableError("gone")

    with pytest.raises(ServerUnavailableError):
        await pool.run(dead)
    with pytest.raises(ServerUnavailableError, match="no ComfyUI server is answering"):
        await pool.run(dead)
    await pool.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_single_server_restart_is_waited_for():
    """The only server restarts mid-job: the job waits for it instead of failing."""
    a = FakeClient("http://a")
    gate, clock = Gate(), Clock()
    pool = ComfyPool([a], sleep=gate, clock=clock, outage_grace=60)
    await pool.start()
    calls = 0

    async def job(client):
        nonlocal calls
        calls += 1
        if not client.up:
            raise ServerUnavailableError("connection refused")
        return "done"

    a.up = False
    task = asyncio.create_task(pool.run(job))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and calls == 1  # waiting, not failed
    clock.now = 30.0  # still within the grace
    gate.event.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    a.up = True
    gate.event.set()
    assert await asyncio.wait_for(task, 5) == "done" and calls == 2
    assert gate.calls[-1] == 1.0  # probes are quick while nothing is up
    await pool.aclose()


async def test_outage_longer_than_the_grace_fails_clearly():
    a = FakeClient("http://a")
    gate, clock = Gate(), Clock()
    pool = ComfyPool([a], sleep=gate, clock=clock, outage_grace=60)
    await pool.start()

    async def job(client):
        raise ServerUnavailableError("connection refused")

    a.up = False
    task = asyncio.create_task(pool.run(job))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.now = 61.0
    gate.event.set()
    with pytest.raises(ServerUnavailableError, match="no ComfyUI server is answering for 60 s"):
        await asyncio.wait_for(task, 5)
    await pool.aclose()


async def test_keep_jobs_on_close_reaches_every_member():
    members = [FakeClient("http://a"), FakeClient("http://b", up=False)]
    pool = ComfyPool(members, sleep=Gate())
    assert not any(m.keep_abandoned_jobs for m in members)
    pool.keep_jobs_on_close()
    assert all(m.keep_abandoned_jobs for m in members)
    await pool.aclose()


async def test_an_idle_local_gpu_first_then_the_endpoint_then_the_local_queue():
    local = FakeClient("http://gpu")
    endpoint = FakeClient("runpod://abc")
    endpoint.elastic, endpoint.concurrency = True, 3  # type: ignore[attr-defined]
    pool = ComfyPool([endpoint, local], depth=2, sleep=Gate())
    await pool.start()
    assert [s.depth for s in pool.servers] == [3, 2]
    release = asyncio.Event()
    placed: list[str] = []

    async def job(client):
        placed.append(client.url)
        await release.wait()

    tasks = [asyncio.create_task(pool.run(job)) for _ in range(6)]
    for _ in range(6):
        await asyncio.sleep(0)
    # The local GPU's first slot, the endpoint's three, the local queued slot; the sixth waits.
    assert placed == ["http://gpu", "runpod://abc", "runpod://abc", "runpod://abc", "http://gpu"]
    release.set()
    await asyncio.gather(*tasks)
    await pool.aclose()
