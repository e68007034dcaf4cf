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
