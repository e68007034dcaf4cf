"""Each scene's state and its structured failure in ``GET /api/topics/{slug}`` (issue #17.3 / #18.3): the page
reads them from the answer and follows the stream from its ``last_event_id``, never parsing error text."""

from __future__ import annotations

from pathlib import Path

from service_helpers import topic, with_comfy

from sceneforge.service.scene_states import SceneStates


def _ev(kind: str, scene: int | None = None, stage: str | None = None, **data) -> dict:
    return {"kind": kind, "scene": scene, "stage": stage, "data": data}


def test_only_an_event_that_may_change_a_state_moves_the_version():
    states = SceneStates(2)
    states.apply(_ev("status", status="queued", job={"kind": "run"}))
    before = states.version
    for event in (_ev("status", status="running"), _ev("stage_started", stage="audio", total=2),
                  _ev("warning", message="slow"), _ev("scene_started", 9, "audio"),
                  _ev("status", status="queued", job={"kind": "preview"})):
        states.apply(event)
        assert states.version == before, event  # a view built for these states is still right
    states.apply(_ev("scene_started", 1, "audio"))
    assert states.version > before and states.view(1)["phase"] == "making"
    states.apply(_ev("scene_failed", 2, "audio", reason="no"))
    failed = states.version
    states.apply(_ev("scene_done", 2, "audio"))  # a failed scene's reason stays until the next job
    assert states.version == failed and states.view(2)["phase"] == "failed"
    states.apply(_ev("status", status="done"))
    assert states.version > failed and states.view(1)["phase"] == "done"


def test_states_follow_the_events_and_a_failure_is_structured():
    states = SceneStates(3)
    states.apply(_ev("status", status="queued", job={"kind": "run"}))
    assert [states.view(n)["phase"] for n in (1, 2, 3)] == ["queued"] * 3
    states.apply(_ev("scene_started", 1, "audio"))
    states.apply(_ev("scene_started", 1, "image"))
    states.apply(_ev("job_progress", 1, "image", value=3, max=4))
    assert states.view(1)["phase"] == "making" and states.view(1)["stages"] == {"audio": "making", "image": "making"}
    states.apply(_ev("scene_done", 1, "audio"))
    assert states.view(1)["note"] == "75%" and states.view(1)["stage"] == "image"
    states.apply(_ev("scene_failed", 2, "image", reason="scene 2: image: the server said no",
                     error={"type": "GenerationError", "message": "...", "retryable": True}))
    states.apply(_ev("scene_failed", 2, "motion", reason="its image failed",
                     error={"type": "upstream", "message": "its image failed", "retryable": False}))
    states.apply(_ev("scene_done", 1, "image"))
    states.apply(_ev("status", status="failed", error="scene 2: image: the server said no"))
    one, two, three = (states.view(n) for n in (1, 2, 3))
    assert one["phase"] == "done" and "failure" not in one
    assert two["failure"] == {"stage": "motion", "kind": "upstream", "message": "its image failed",
                              "retryable": False}
    assert three["phase"] == "done"  # another scene failed: this one is not blamed for the job
    # A job that failed naming no scene fails every scene that was waiting, with the job's reason.
    states = SceneStates(2, busy=True)
    states.apply(_ev("status", status="failed", error="no server answered"))
    assert states.view(1)["failure"] == {"stage": None, "kind": "job", "message": "no server answered",
                                         "retryable": False}
    assert states.view(2)["failure"]["kind"] == "job" and states.changed == {}  # shared, not one per scene
    assert SceneStates.from_json(states.to_json(), 2, busy=False).to_json() == states.to_json()
    # A big topic costs what its events cost: the scenes no event named share one state.
    big = SceneStates(100_000, busy=True)
    big.apply(_ev("scene_done", 7, "audio"))
    big.apply(_ev("status", status="done"))
    assert len(big.changed) == 1 and big.view(99_999)["phase"] == "done" and len(big.to_json()["scenes"]) == 1


async def test_a_failed_scene_says_why_in_the_topics_answer(start, comfy, tmp_path: Path):
    comfy.fault("execution_error", times=1)  # the first image job fails; one attempt per scene
    svc = await start(with_comfy(tmp_path, comfy, image_retry={"max_attempts": 1}, serve_webhook_allow=()))
    await svc.submit(topic("why", 2))
    state = await svc.wait("why")
    failed = [s for s in state["scenes"] if s["state"]["phase"] == "failed"]
    fine = [s for s in state["scenes"] if s["state"]["phase"] == "done"]
    assert state["status"] == "failed" and len(failed) == len(fine) == 1
    failure, n = failed[0]["state"]["failure"], failed[0]["n"]
    assert failure["stage"] == "image" and failure["kind"] == "GenerationError" and f"scene {n}" in failure["message"]
    assert failed[0]["state"]["stages"]["image"] == "failed" and failed[0]["state"]["stages"]["audio"] == "done"
    assert isinstance(failure["retryable"], bool)
    # After a restart the answer still says so (kept in status.json).
    await svc.stop()
    again = await start(with_comfy(tmp_path, comfy))
    status, kept = await again.call("GET", "/api/topics/why")
    assert kept["scenes"][n - 1]["state"]["failure"] == failure
