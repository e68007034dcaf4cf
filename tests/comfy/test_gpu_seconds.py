"""GPU seconds of a job on a ComfyUI server: its execution_start to execution_success timestamps in ``/history``
(the recorded answers of a real ComfyUI 0.33), and what a job reports through the client."""

from __future__ import annotations

import json

import pytest
from comfy_helpers import NORMAL_GRAPH, SAMPLES

from sceneforge.comfy.client import ComfyClient
from sceneforge.comfy.protocol.result import execution_seconds


def recorded_entry() -> dict:
    recorded = json.loads((SAMPLES / "run" / "01_normal" / "history.json").read_text())
    (entry,) = recorded["json"].values()  # GET /history/<prompt_id>: {prompt_id: entry}
    return entry


def test_recorded_history_gives_its_execution_time():
    # execution_start 1795473017384, execution_success 1795473017394 (milliseconds)
    assert execution_seconds(recorded_entry()) == pytest.approx(0.010)


@pytest.mark.parametrize("messages", [
    [],
    [["execution_start", {"timestamp": 1000}]],
    [["execution_start", {"timestamp": 2000}], ["execution_success", {"timestamp": 1000}]],
    [["execution_start", {"timestamp": "x"}], ["execution_success", {"timestamp": 1000}]],
    "not a list",
])
def test_missing_or_odd_timestamps_give_nothing(messages):
    assert execution_seconds({"status": {"messages": messages}}) is None


async def test_a_finished_job_carries_its_gpu_seconds(comfy_server):
    client = ComfyClient(comfy_server.url)
    try:
        result = await client.run(NORMAL_GRAPH)
    finally:
        await client.aclose()
    assert result.gpu_seconds is not None and 0 <= result.gpu_seconds < 10
    assert result.queue_seconds is None
