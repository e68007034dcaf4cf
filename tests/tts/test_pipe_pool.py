"""The pipe worker pool with small real worker processes: replies, deaths, timeouts, close."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import sceneforge.tts.frames
from sceneforge.tts.frames import FrameError, read_message, write_message
from sceneforge.tts.pipe_pool import WorkerDied, WorkerPool

# A worker that echoes, and misbehaves on request: exit, hang, or write garbage.
WORKER = r"""
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("frames", FRAMES)  # not via sceneforge: starts in 20 ms
frames = importlib.util.module_from_spec(spec); spec.loader.exec_module(frames)
read_message, write_message = frames.read_message, frames.write_message
out = os.fdopen(os.dup(1), "wb")
while (msg := read_message(sys.stdin.buffer)) is not None:
    header, blob = msg
    act = header.get("act")
    if act == "exit":
        os._exit(3)
    if act == "hang":
        sys.stdin.buffer.read()  # blocks until the pool closes our stdin (or kills us)
    if act == "garbage":
        out.write(b"\xff" * 64); out.flush(); continue
    write_message(out, {"echo": header.get("n"), "pid": os.getpid()}, blob[::-1])
""".replace("FRAMES", repr(sceneforge.tts.frames.__file__))


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if status.exists():  # a zombie still "exists": look at its state
        return "State:\tZ" not in status.read_text()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WorkerPool]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    p = WorkerPool([sys.executable, "-P", str(script)], 2, name="test")
    yield p
    await p.aclose()


def test_frames_round_trip_and_limits() -> None:
    buf = io.BytesIO()
    write_message(buf, {"a": "안녕"}, b"\x00\x01")
    write_message(buf, {"b": 1})
    buf.seek(0)
    assert read_message(buf) == ({"a": "안녕", "blob": 2}, b"\x00\x01")
    assert read_message(buf) == ({"b": 1, "blob": 0}, b"")
    assert read_message(buf) is None  # clean end
    with pytest.raises(FrameError):
        read_message(io.BytesIO(b"\xff\xff\xff\xff"), max_header=1024)
    with pytest.raises(FrameError):
        read_message(io.BytesIO(b"\x00\x00\x00\x0b{\"blob\":-1}"))
    with pytest.raises(EOFError):
        read_message(io.BytesIO(b"\x00\x00\x00\x09{\"blob\":"))


async def test_calls_are_answered_by_at_most_size_workers(pool: WorkerPool) -> None:
    replies = await asyncio.gather(*(pool.call({"n": i}, bytes([i, 1]), timeout=30) for i in range(6)))
    assert [(h["echo"], blob) for h, blob in replies] == [(i, bytes([1, i])) for i in range(6)]
    pids = {h["pid"] for h, _ in replies}
    assert pids == set(pool.pids) and 1 <= len(pids) <= 2 and os.getpid() not in pids


async def test_a_dying_worker_fails_its_call_only_and_is_replaced(pool: WorkerPool) -> None:
    await asyncio.gather(*(pool.call({"n": i}, timeout=30) for i in range(4)))
    before = pool.pids
    with pytest.raises(WorkerDied, match="exited with code 3"):
        await pool.call({"act": "exit"}, timeout=30)
    after = pool.pids
    assert len(after) == len(before) - 1 and set(after) < set(before)  # the other worker lives on
    header, _ = await pool.call({"n": 7}, timeout=30)
    assert header["echo"] == 7


async def test_a_killed_worker_is_reported(pool: WorkerPool) -> None:
    header, _ = await pool.call({"n": 1}, timeout=30)
    os.kill(header["pid"], 9)
    with pytest.raises(WorkerDied, match="killed by signal 9"):
        await pool.call({"n": 2}, timeout=30)  # it was idle: the next call on it finds it dead
    assert header["pid"] not in pool.pids
    assert (await pool.call({"n": 3}, timeout=30))[0]["pid"] != header["pid"]


async def test_timeout_kills_the_stuck_worker(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    p = WorkerPool([sys.executable, "-P", str(script)], 1)
    try:
        header, _ = await p.call({"n": 1}, timeout=30)
        with pytest.raises(TimeoutError):
            await p.call({"act": "hang"}, timeout=0.3)
        # One thread: this call runs once the stuck worker's thread has reaped it.
        again, _ = await p.call({"n": 2}, timeout=30)
        assert again["echo"] == 2 and again["pid"] != header["pid"]
        assert p.pids == [again["pid"]] and not alive(header["pid"])
    finally:
        await p.aclose()


async def test_garbage_on_stdout_is_a_dead_worker(pool: WorkerPool) -> None:
    with pytest.raises(WorkerDied, match="unreadable reply"):
        await pool.call({"act": "garbage"}, timeout=30)
    assert pool.pids == []


async def test_a_worker_that_cannot_start_says_so(tmp_path: Path) -> None:
    p = WorkerPool([sys.executable, "-c", "import sys; sys.exit(5)"], 1)
    try:
        with pytest.raises(WorkerDied, match="exited with code 5 before its first answer"):
            await p.call({}, timeout=30)
    finally:
        await p.aclose()
    missing = WorkerPool([str(tmp_path / "no-such-python")], 1)
    with pytest.raises(WorkerDied, match="could not start"):
        await missing.call({}, timeout=30)
    await missing.aclose()


async def test_close_ends_the_workers_and_later_calls_fail_cleanly(pool: WorkerPool) -> None:
    replies = await asyncio.gather(*(pool.call({"n": i}, timeout=30) for i in range(2)))
    pids = {h["pid"] for h, _ in replies}
    await pool.aclose()
    assert pool.pids == [] and not any(alive(pid) for pid in pids)
    with pytest.raises(WorkerDied, match="closed"):
        await pool.call({"n": 3}, timeout=30)


async def test_works_from_one_event_loop_after_another(tmp_path: Path) -> None:
    """A sync caller runs asyncio.run per call: the pool is not tied to a loop."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    p = WorkerPool([sys.executable, "-P", str(script)], 1)

    def in_new_loop(n: int) -> int:
        return asyncio.run(p.call({"n": n}, timeout=30))[0]["pid"]

    try:
        first = await asyncio.to_thread(in_new_loop, 1)
        second = await asyncio.to_thread(in_new_loop, 2)
        assert first == second  # the same worker served both loops
    finally:
        await p.aclose()
