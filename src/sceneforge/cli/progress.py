"""Rich progress bars and the summary table, driven by the event stream."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..config import Settings
from ..events import Event
from ..layout import TopicLayout
from ..pipeline.usage import scene_usage
from ..scenes import SceneFile

__all__ = ["ProgressView"]


class ProgressView:
    """One bar per (topic, stage). Also an event sink; a context manager that starts/stops the display."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self._tasks: dict[tuple[str | None, str | None], Any] = {}
        self.failures: list[Event] = []
        self.retries = 0
        self._waiting: dict[tuple[str | None, str | None], set[int | None]] = {}

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, ev: Event) -> None:
        key = (ev.topic, ev.stage)
        if ev.kind == "stage_started":
            label = f"{ev.topic} · {ev.stage} ({ev.data.get('engine', '')})"
            self._tasks[key] = self.progress.add_task(label, total=ev.data.get("total"), note="")
        elif ev.kind in ("scene_done", "scene_cached", "scene_failed") and key in self._tasks:
            self.progress.advance(self._tasks[key])
            if ev.scene in self._waiting.get(key, ()):
                self._waiting[key].discard(ev.scene)
                self.progress.update(self._tasks[key], note=self._waiting_note(key))
            if ev.kind == "scene_failed":
                self.failures.append(ev)
                self.progress.update(self._tasks[key], note=f"[red]{len(self._failed(key))} failed[/]")
        elif ev.kind == "scene_retried" and key in self._tasks:
            self.retries += 1
            self.progress.update(self._tasks[key], note=f"retry scene {ev.scene} in {ev.data.get('wait')} s")
        elif ev.kind in ("job_waiting", "job_started") and key in self._tasks:
            waiting = self._waiting.setdefault(key, set())
            (waiting.add if ev.kind == "job_waiting" else waiting.discard)(ev.scene)
            self.progress.update(self._tasks[key], note=self._waiting_note(key))
        elif ev.kind == "warning" and self.enabled:
            self.progress.console.print("[yellow]warning:[/] ", end="", markup=True)
            self.progress.console.print(str(ev.data.get("message")), markup=False)

    def _waiting_note(self, key: tuple[str | None, str | None]) -> str:
        """``scene 3 waiting for a worker`` (an endpoint's cold start), or nothing."""
        scenes = sorted(s for s in self._waiting.get(key, ()) if s is not None)
        if not scenes:
            return ""
        return f"scene{'s' if len(scenes) > 1 else ''} {', '.join(map(str, scenes))} waiting for a worker"

    def _failed(self, key: tuple[str | None, str | None]) -> list[Event]:
        return [e for e in self.failures if (e.topic, e.stage) == key]

    def summary(self, sfs: list[SceneFile], settings: Settings) -> None:
        """A table of every scene's results, with the GPU time (and cost, where a price is set) of its assets."""
        for sf in sfs:
            table = Table(title=f"{sf.topic} → {TopicLayout.for_topic(settings.out_dir, sf.topic).root}")
            for name in ("scene", "script", "audio", "image", "motion", "GPU"):
                table.add_column(name, justify="right" if name in ("scene", "GPU") else "left")
            total_s = total_cost = 0.0
            known = priced = False
            for n, s in enumerate(sf.scenes, 1):
                d = s.to_dict()
                audio = f"{d['audio_duration']:.1f} s" if d.get("audio_duration") else "-"
                image = "✓" if d.get("image_path") else "-"
                frames = d.get("motion_frames_path") or []
                motion = f"{len(frames)} frames" if frames else "-"
                script = s.script if len(s.script) <= 30 else s.script[:29] + "…"
                seconds, cost = scene_usage(s)
                total_s += seconds or 0.0
                total_cost += cost or 0.0
                known, priced = known or seconds is not None, priced or cost is not None
                table.add_row(str(n), script, audio, image, motion, gpu_text(seconds, cost))
            if known:
                table.caption = f"GPU time {gpu_text(total_s, total_cost if priced else None)}"
            self.console.print(table)


def gpu_text(seconds: float | None, cost: float | None) -> str:
    """``41.0 s`` or ``41.0 s · $0.0135`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" + (f" · ${cost:.4f}" if cost is not None else "")
