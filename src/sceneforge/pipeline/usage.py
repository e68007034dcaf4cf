"""GPU time and cost per scene and stage: ``gpu_seconds`` / ``gpu_cost`` in ``scenes.json``.

A backend that knows what its job cost reports ``gpu_seconds`` (and ``gpu_cost`` where the member
that ran it has a ``price_per_second``) among its asset's fields; they are recorded with the asset,
so a cached scene keeps them. On the scene they are one mapping per field, by stage:
``"gpu_seconds": {"image": 3.2, "motion": 41.0}``: what made the scene's current assets. An asset
made without a figure (an offline backend) removes its stage's entry.

The topic keeps its own total of every job it ran (:class:`TopicUsage`, ``.sceneforge/usage.json``,
shown at the top of ``scenes.json`` as ``gpu_seconds_total`` / ``gpu_cost_total``): a re-roll replaces
the scene's figures but adds to the topic's total.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_json
from ..scenes import Scene

__all__ = ["USAGE_FIELDS", "set_usage", "stage_usage", "drop_usage", "scene_usage", "TopicUsage"]

USAGE_FIELDS = ("gpu_seconds", "gpu_cost")


def _number(value: Any) -> bool:
    """A figure worth keeping: an int or a float, never a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _figures(value: Any) -> dict[str, float]:
    """The numeric entries of a per-stage mapping (anything else: none)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if _number(v)}


def _per_stage(scene: Scene, name: str) -> dict[str, float]:
    return _figures(getattr(scene, name, None))


def _store(scene: Scene, name: str, per_stage: dict[str, float]) -> None:
    if per_stage:
        setattr(scene, name, per_stage)
    else:
        (scene.__pydantic_extra__ or {}).pop(name, None)


def set_usage(scene: Scene, stage: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Move the asset's usage figures from ``fields`` onto the scene's per-stage mappings; the rest back."""
    rest = dict(fields)
    for name in USAGE_FIELDS:
        value = rest.pop(name, None)
        per_stage = _per_stage(scene, name)
        if _number(value) and value >= 0:
            per_stage[stage] = float(value)
        else:
            per_stage.pop(stage, None)
        _store(scene, name, per_stage)
    return rest


def drop_usage(scene: Scene, stage: str) -> None:
    """Forget a stage's figures (its asset is being made again, or was dropped)."""
    for name in USAGE_FIELDS:
        per_stage = _per_stage(scene, name)
        if per_stage.pop(stage, None) is not None:
            _store(scene, name, per_stage)


def stage_usage(scene: Scene, stage: str) -> dict[str, float]:
    """The stage's figures of the scene, for its ``scene_done`` event."""
    out = {}
    for name in USAGE_FIELDS:
        value = _per_stage(scene, name).get(stage)
        if value is not None:
            out[name] = value
    return out


def scene_usage(scene: Scene) -> tuple[float | None, float | None]:
    """``(GPU seconds, cost)`` of the scene over every stage (None where nothing is known)."""
    seconds, cost = _per_stage(scene, "gpu_seconds"), _per_stage(scene, "gpu_cost")
    return (sum(seconds.values()) if seconds else None, sum(cost.values()) if cost else None)


class TopicUsage:
    """Everything a topic's jobs cost, by stage, over all its runs and re-rolls (``state_dir/usage.json``).

    One per run (:attr:`~sceneforge.pipeline.context.RunContext.usage`, under the topic's lock): the
    file is read once, at the first use, and the totals are kept in memory. Each fresh asset's figures
    are written at once (no re-read), so the GPU time of the jobs a run paid for survives a kill.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "usage.json"
        self._totals: dict[str, dict[str, float]] | None = None

    def load(self) -> dict[str, dict[str, float]]:
        """The totals (read from the file at the first call only)."""
        if self._totals is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            per_name = data if isinstance(data, dict) else {}
            self._totals = {name: _figures(per_name[name]) for name in USAGE_FIELDS
                            if isinstance(per_name.get(name), dict)}
        return self._totals

    def add(self, stage: str, fields: dict[str, Any]) -> None:
        """Add one fresh asset's figures (a cached one cost nothing this time)."""
        figures = {n: fields[n] for n in USAGE_FIELDS if _number(fields.get(n))}
        if not figures:
            return
        totals = self.load()
        for name, value in figures.items():
            per_stage = totals.setdefault(name, {})
            per_stage[stage] = round(per_stage.get(stage, 0.0) + float(value), 6)
        atomic_write_json(self.path, totals)

    def top_level(self) -> dict[str, dict[str, float]]:
        """``{"gpu_seconds_total": {...}, "gpu_cost_total": {...}}`` for the top of ``scenes.json``."""
        return {f"{name}_total": dict(per_stage) for name, per_stage in self.load().items() if per_stage}
