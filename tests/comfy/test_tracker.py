"""The pure job tracker (``comfy/protocol/watch.py``) driven by the recorded websocket frames of a real ComfyUI.

No server, no event loop, no clock: each test feeds inputs with explicit times and
asserts the actions. The frames and history entries are copies of the recordings
in ``tests/data/comfyui/samples`` (mirroring ``comfyui/samples``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from sceneforge.comfy.protocol import watch
from sceneforge.comfy.protocol.watch import (
    QUEUE_FACTOR,
    Cancel,
    Cancelled,
    Done,
    Emit,
    Fail,
    History,
    JobTracker,
    Message,
    Poll,
    PollQueue,
    Queue,
    Reconnect,
    SocketDown,
    SocketFailed,
    SocketUp,
    Tick,
    Unreachable,
)
from sceneforge.errors import (
    GenerationError,
    JobInterruptedError,
    JobTimeoutError,
    ServerUnavailableError,
    TransientError,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "comfyui" / "samples"
SERVER = "http://gpu:8188"


def frames(rel: str) -> list[dict]:
    """The text frames of a recorded websocket session, decoded."""
    return [f["msg"] for f in json.loads((DATA / rel).read_text()) if f["kind"] == "text"]


def history_entry(rel: str) -> tuple[str, dict]:
    """``(prompt_id, entry)`` of a recorded ``GET /history/<id>`` answer (either recording format)."""
    doc = json.loads((DATA / rel).read_text())
    body = doc["json"] if "json" in doc else doc["response"]["json"]
    ((pid, entry),) = body.items()
    return pid, entry


def prompt_id_of(msgs: list[dict]) -> str:
    return next(m["data"]["prompt_id"] for m in msgs if isinstance(m.get("data"), dict) and "prompt_id" in m["data"])


def tracker(pid: str, **kw) -> JobTracker:
    kw.setdefault("limit", 300)
    kw.setdefault("now", 0.0)
    return JobTracker(pid, server=SERVER, **kw)


def feed_all(t: JobTracker, msgs: list[dict], start: float = 0.0) -> list[list]:
    """Feed every frame (0.01 s apart); the actions of each, in order."""
    return [t.feed(Message(m), start + i * 0.01) for i, m in enumerate(msgs)]


def kinds(actions: list) -> list[str]:
    return [a.kind for a in actions if isinstance(a, Emit)]


# --- recorded runs ------------------------------------------------------------------
def test_normal_run_ends_at_executing_null_and_reads_history():
    msgs = frames("run/01_normal/ws.json")
    pid = prompt_id_of(msgs)
    t = tracker(pid)
    per_frame = feed_all(t, msgs)
    flat = [a for acts in per_frame for a in acts]
    # Only the very last frame (executing, node null) asks for history: not execution_success (§4.4).
    assert [i for i, acts in enumerate(per_frame) if any(isinstance(a, Poll) for a in acts)] == [len(msgs) - 1]
    assert msgs[-1] == {"type": "executing", "data": {"node": None, "prompt_id": pid}}
    success_at = next(i for i, m in enumerate(msgs) if m["type"] == "execution_success")
    assert per_frame[success_at] == []
    assert kinds(flat) == ["started", "cached", "executing", "executing", "executed"]
    assert Emit("executed", {"node": "2"}) in flat
    hpid, entry = history_entry("run/01_normal/history.json")
    assert hpid == pid
    (done,) = t.feed(History(entry), 1.0)
    assert isinstance(done, Done)
    assert [r["filename"] for r in done.result.images()] == ["test_00001_.png", "test_00002_.png", "test_00003_.png"]
    assert done.result.server == SERVER and t.feed(Tick(), 2.0) == []  # over: nothing more


def test_sampler_progress_is_reported_step_by_step():
    """``extra/01_progress_messages``: a ProgressBar node's ``progress`` frames (throttled by the server:
    1, 11, 12 of 12) are each told as a ``progress`` event, and the run ends on executing(null) as usual."""
    msgs = frames("extra/01_progress_messages/ws.json")
    pid = prompt_id_of(msgs)
    flat = [a for acts in feed_all(tracker(pid), msgs) for a in acts]
    recorded = [m["data"] for m in msgs if m["type"] == "progress"]
    assert [(d["value"], d["max"]) for d in recorded] == [(1, 12), (11, 12), (12, 12)]
    assert [a.data for a in flat if isinstance(a, Emit) and a.kind == "progress"] == [
        {"node": d["node"], "value": d["value"], "max": d["max"]} for d in recorded]
    assert flat[-1] == Poll()
    hpid, entry = history_entry("extra/01_progress_messages/history.json")
    assert hpid == pid and entry["status"]["status_str"] == "success"


def test_cached_rerun_reports_cached_nodes():
    msgs = frames("run/02_cached_same/ws.json")
    t = tracker(prompt_id_of(msgs))
    flat = [a for acts in feed_all(t, msgs) for a in acts]
    assert Emit("cached", {"nodes": ["1", "2"]}) in flat and "executing" not in kinds(flat)
    assert flat[-1] == Poll()
    _, entry = history_entry("run/02_cached_same/history.json")
    (done,) = t.feed(History(entry), 1.0)
    assert done.result.cached_nodes == ["1", "2"] and len(done.result.images()) == 3


def test_runtime_error_fails_at_execution_error():
    msgs = frames("runtime_error/ws.json")
    t = tracker(prompt_id_of(msgs))
    per_frame = feed_all(t, msgs)
    at = next(i for i, m in enumerate(msgs) if m["type"] == "execution_error")
    (fail,) = per_frame[at]
    assert isinstance(fail, Fail) and type(fail.error) is GenerationError
    assert (fail.error.node_id, fail.error.node_type) == ("2", "ImageToMask")
    assert str(fail.error).startswith("node 2 ImageToMask: IndexError: index 3 is out of bounds")
    assert SERVER in str(fail.error)
    assert all(acts == [] for acts in per_frame[at + 1:])  # the frames after the failure change nothing


def test_runtime_error_from_history_alone():
    pid, entry = history_entry("runtime_error/history.json")
    t = tracker(pid, socket=False)
    (fail,) = t.feed(History(entry), 5.0)
    assert type(fail.error) is GenerationError and fail.error.node_id == "2"


@pytest.mark.parametrize(("ws_file", "node"), [
    ("queue/09_ws_queue_clear_interrupt.json", "12"),
    ("queue/14_ws_targeted_interrupt.json", "11"),
])
def test_interrupt_fails_as_interrupted(ws_file, node):
    msgs = frames(ws_file)
    t = tracker(prompt_id_of(msgs))
    flat = [a for acts in feed_all(t, msgs) for a in acts]
    fails = [a for a in flat if isinstance(a, Fail)]
    assert len(fails) == 1 and isinstance(fails[0].error, JobInterruptedError)
    assert fails[0].error.node_id == node and not any(isinstance(a, Poll) for a in flat)


def test_interrupt_from_history():
    pid, entry = history_entry("queue/08_history_interrupted.json")
    (fail,) = tracker(pid).feed(History(entry), 1.0)
    assert isinstance(fail.error, JobInterruptedError) and fail.error.node_id == "12"


def test_reconnect_quirk_is_ignored_and_the_run_completes():
    msgs = frames("extra/04_ws_reconnect_new_socket.json")
    pid = prompt_id_of(msgs)
    t = tracker(pid, poll_interval=1.0)
    assert t.feed(SocketDown(), 1.0) == [Emit("ws_dropped"), Reconnect()]
    assert t.feed(SocketUp(), 1.1) == [Emit("ws_reconnected"), Poll()]  # messages were missed: look once
    assert t.feed(History(None), 1.2) == [PollQueue()]
    assert t.feed(Queue(frozenset({pid}), frozenset({pid})), 1.3) == []
    quirk = msgs[1]
    assert quirk == {"type": "executing", "data": {"node": "2"}}  # no prompt_id
    per_frame = feed_all(t, msgs, start=2.0)
    assert per_frame[0] == [] and per_frame[1] == []  # status + the quirk: nothing about us
    assert per_frame[-1] == [Poll()]
    (done,) = t.feed(History({"outputs": {}, "status": {"status_str": "success", "completed": True}}), 3.0)
    assert isinstance(done, Done)


@pytest.mark.parametrize("round_no", [1, 2, 3])
def test_history_race_recordings(round_no):
    """Every recorded race row: history read only after executing(null), where it was never empty."""
    race = json.loads((DATA / f"extra/09_history_race_round{round_no}.json").read_text())
    assert race["empty_after_executing_none"] == 0
    entry = {"outputs": {"2": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
             "status": {"status_str": "success", "completed": True}}
    for row in race["rows"]:
        t = tracker("P")
        # execution_success may come before history exists (row["empty_after_success"]): no read then.
        assert t.feed(Message({"type": "execution_success", "data": {"prompt_id": "P"}}), 0.0) == []
        gap = row["ws_gap_success_to_none_ms"] / 1000
        assert t.feed(Message({"type": "executing", "data": {"node": None, "prompt_id": "P"}}), gap) == [Poll()]
        answer = None if row["empty_after_executing_none"] else entry
        (done,) = t.feed(History(answer), gap)
        assert isinstance(done, Done)
    assert sum(r["empty_after_success"] for r in race["rows"]) == race["empty_after_execution_success"]


# --- the race handled anyway, and the rules with no recording ------------------------------
def test_empty_history_after_the_end_is_read_again_then_falls_back():
    t = tracker("P", history_attempts=3, poll_interval=1.0)
    t.feed(Message({"type": "executed", "data": {"prompt_id": "P", "node": "9", "output": {"images": []}}}), 0)
    t.feed(Message({"type": "execution_success", "data": {"prompt_id": "P"}}), 0)
    assert t.feed(Message({"type": "executing", "data": {"node": None, "prompt_id": "P"}}), 0) == [Poll()]
    assert t.feed(History(None), 0.1) == [Poll(delay=0.1)]
    assert t.feed(History(None), 0.3) == [Poll(delay=0.2)]
    warn, done = t.feed(History(None), 0.6)
    assert warn.kind == "warning" and "stayed empty" in warn.data["message"]
    assert done.result.outputs == {"9": {"images": []}}
    t2 = tracker("Q", history_attempts=1)
    t2.feed(Message({"type": "executing", "data": {"node": None, "prompt_id": "Q"}}), 0)
    (fail,) = t2.feed(History(None), 0.1)
    assert isinstance(fail.error, TransientError) and "left no history" in str(fail.error)


def test_time_limit_counts_from_execution_start():
    t = tracker("P", limit=2, now=0.0, idle=1000)
    assert t.feed(Tick(), 5.0) == []  # queued 5 s: fine (a queued job gets QUEUE_FACTOR x 2 s)
    assert t.feed(Message({"type": "execution_start", "data": {"prompt_id": "P"}}), 5.0) == [Emit("started")]
    assert t.next_check() == 7.0
    assert t.feed(Tick(), 6.9) == []
    assert t.feed(Tick(), 7.0) == [Cancel()]
    assert t.feed(Tick(), 7.5) == []  # one cancel only
    (fail,) = t.feed(Cancelled(True), 7.2)
    msg = str(fail.error)
    assert isinstance(fail.error, JobTimeoutError) and SERVER in msg
    assert "did not finish within 2 s (its limit" in msg and "ran 2.2 s" in msg and "7.2 s since it was submitted" in msg
    assert "cancelled on the server" in msg


def test_a_job_that_never_starts_gets_queue_factor_times_the_limit():
    t = tracker("P", limit=2, now=0.0, idle=1000)
    assert t.feed(Tick(), 2 * QUEUE_FACTOR - 0.1) == []
    assert t.feed(Tick(), 2 * QUEUE_FACTOR) == [Cancel()]
    (fail,) = t.feed(Cancelled(False), 20.3)
    assert "never started" in str(fail.error) and "still queued after 20.3 s" in str(fail.error)
    assert "cancelling it on the server failed" in str(fail.error)


def test_silent_socket_reconnects_then_polls():
    t = tracker("P", idle=30, poll_interval=1)
    assert t.feed(Tick(), 29.9) == []
    assert t.feed(Tick(), 30.0) == [Emit("ws_idle"), Reconnect()]
    assert t.feed(SocketUp(), 30.1) == [Emit("ws_reconnected"), Poll()]
    assert t.feed(SocketFailed(), 31) == [Poll()]  # a failed reconnect polls too


def test_status_flood_does_not_hide_our_own_silence():
    """Broadcasts prove the socket alive, not that we are told about our job: poll anyway."""
    t = tracker("P", idle=30, poll_interval=1)
    status = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}
    for i in range(300):
        assert t.feed(Message(status), i * 0.1) == []
    assert t.feed(Tick(), 30.0) == [Emit("polling"), Poll()]
    assert t.feed(History(None), 30.1) == [PollQueue()]


def test_job_vanishing_twice_is_transient():
    t = tracker("P", idle=30, poll_interval=1)
    t.feed(Tick(), 30.0)  # silence -> reconnect ...
    t.feed(SocketUp(), 30.0)  # ... and a poll
    assert t.feed(History(None), 30.0) == [PollQueue()]
    assert t.feed(Queue(frozenset({"other"})), 30.0) == []
    assert t.feed(Tick(), 30.5) == []
    assert t.feed(Tick(), 31.0) == [Poll()]  # looks again soon, not after a whole idle period
    assert t.feed(History(None), 31.0) == [PollQueue()]
    (fail,) = t.feed(Queue(frozenset()), 31.0)
    assert isinstance(fail.error, TransientError) and "vanished" in str(fail.error)


def test_queued_again_resets_vanished():
    t = tracker("P")
    t.feed(Queue(frozenset()), 0)
    t.feed(Queue(frozenset({"P"})), 1)
    assert t.feed(Queue(frozenset()), 2) == [] and t.vanished == 1


def test_unreachable_polls_in_a_row_mean_the_server_is_gone():
    t = tracker("P", unreachable_after=3)
    boom = TransientError("connection reset")
    assert t.feed(Unreachable(boom), 1) == []
    assert t.feed(Unreachable(boom), 2) == []
    (fail,) = t.feed(Unreachable(boom), 3)
    assert isinstance(fail.error, ServerUnavailableError) and SERVER in str(fail.error)
    t2 = tracker("P", unreachable_after=2)
    t2.feed(Unreachable(boom), 1)
    t2.feed(History(None), 2)  # a success in between resets the count
    assert t2.feed(Unreachable(boom), 3) == []


def test_drop_right_after_a_reconnect_waits_for_the_tick():
    t = tracker("P", poll_interval=1)
    assert t.feed(SocketDown(), 10.0) == [Emit("ws_dropped"), Reconnect()]
    t.feed(SocketUp(), 10.1)
    assert t.feed(SocketDown(), 10.2) == []  # no reconnect storm against a proxy killing sockets
    assert t.feed(Tick(), 10.5) == []
    assert t.feed(Tick(), 11.2) == [Emit("polling"), Reconnect()]


def test_poll_only_job_polls_every_interval_and_starts_its_clock_when_running():
    t = tracker("P", socket=False, poll_interval=2, limit=10, idle=1000)
    assert t.next_check() == 2.0
    assert t.feed(Tick(), 1.0) == []
    assert t.feed(Tick(), 2.0) == [Poll()]  # never a Reconnect: no socket is ours
    t.feed(History(None), 2.0)
    assert t.feed(Queue(frozenset({"P"}), frozenset({"P"})), 2.0) == []
    assert t.started == 2.0 and t.deadline == 12.0


def test_refused_websocket_switches_to_polling_for_good():
    t = tracker("P", poll_interval=1)
    assert t.feed(SocketFailed(permanent=True), 1.0) == [Poll()]
    assert t.feed(Tick(), 2.0) == [Poll()]
    assert t.feed(SocketDown(), 2.5) == []


def test_other_jobs_frames_are_ignored():
    t = tracker("P")
    other = frames("run/01_normal/ws.json")
    assert all(acts == [] for acts in feed_all(t, other))
    assert t.last_own == 0.0 and t.last_any > 0.0  # but they prove the socket alive


def test_tracker_module_does_no_io():
    """watch.py imports neither asyncio nor aiohttp, nor the client that drives it (no import circle)."""
    tree = ast.parse(Path(watch.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.split(".")[0] in ("asyncio", "aiohttp", "socket", "time")}
    assert not names & {"client", "driver", "socket", "http"}
