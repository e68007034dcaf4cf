"""The progress display tells which scenes wait for an endpoint's worker (a cold start), and forgets them
when their job starts or the scene ends."""

from __future__ import annotations

import io

from rich.console import Console

from sceneforge.cli.progress import ProgressView
from sceneforge.events import Event


def ev(kind: str, scene: int | None = None, **data) -> Event:
    return Event(kind, topic="t", stage="motion", scene=scene, data=data)


def note(view: ProgressView) -> str:
    (task,) = view.progress.tasks
    return str(task.fields["note"])


def test_waiting_scenes_are_shown_until_their_job_starts_or_ends():
    view = ProgressView(Console(file=io.StringIO(), width=120), enabled=False)
    view(ev("stage_started", engine="wan", total=3))
    view(ev("job_waiting", 1, server="runpod://abc"))
    view(ev("job_waiting", 3, server="runpod://abc"))
    assert note(view) == "scenes 1, 3 waiting for a worker"
    view(ev("job_started", 1, server="runpod://abc"))
    assert note(view) == "scene 3 waiting for a worker"
    view(ev("scene_done", 3))
    assert note(view) == ""


def test_summary_shows_gpu_time_and_cost_per_scene_and_topic(tmp_path):
    from sceneforge.config import Settings
    from sceneforge.scenes import Scene, SceneFile

    scenes = [Scene(script="one", image_prompt="a", gpu_seconds={"image": 3.2, "motion": 41.0},
                    gpu_cost={"image": 0.001, "motion": 0.0128}),
              Scene(script="two", image_prompt="b", gpu_seconds={"image": 2.8}),
              Scene(script="three", image_prompt="c")]
    buf = io.StringIO()
    view = ProgressView(Console(file=buf, width=160), enabled=False)
    view.summary([SceneFile(topic="t", scenes=scenes)], Settings(out_dir=tmp_path))
    text = buf.getvalue()
    assert "44.2 s · $0.0138" in text and "2.8 s" in text
    assert "GPU time 47.0 s · $0.0138" in text
