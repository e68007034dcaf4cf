"""GPU time and cost per scene and stage: ``gpu_seconds`` / ``gpu_cost`` in ``scenes.json``.

A backend that knows what its job cost reports ``gpu_seconds`` (and ``gpu_cost`` where the member
that ran it has a ``price_per_second``) among its asset's fields; they are recorded with the asset,
so a cached scene keeps them. On the scene they are one mapping per field, by stage:
``"gpu_seconds": {"image": 3.2, "motion": 41.0}``: what made the scene's current assets. An asset
made without a figure (an offline backend) removes its stage's entry.
"""

from __future__ import annotations

from typing import Any

from ..scenes import Scene

__all__ = ["USAGE_FIELDS", "set_usage", "stage_usage", "drop_usage", "scene_usage"]

USAGE_FIELDS = ("gpu_seconds", "gpu_cost")


def _per_stage(scene: Scene, name: str) -> dict[str, float]:
    value = getattr(scene, name, None)
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
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
