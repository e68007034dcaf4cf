"""A topic's GPU totals (``usage.json``): read once per run, each fresh asset's figures on disk at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sceneforge.pipeline.usage import TopicUsage


def test_read_once_written_per_asset_without_rereading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "usage.json").write_text(json.dumps({"gpu_seconds": {"image": 1.0, "bad": True}}))
    reads = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (reads.append(self), read_text(self, *a, **k))[1])
    usage = TopicUsage(tmp_path)
    for _ in range(20):
        usage.add("image", {"gpu_seconds": 0.5, "gpu_cost": 0.25, "seed": 3})
        on_disk = json.loads(read_text(tmp_path / "usage.json"))  # what a kill -9 would leave
        assert on_disk["gpu_seconds"]["image"] == usage.load()["gpu_seconds"]["image"]
    usage.add("audio", {"gpu_seconds": False})  # not a figure: nothing added, nothing written
    assert len(reads) == 1
    assert usage.top_level() == {"gpu_seconds_total": {"image": 11.0}, "gpu_cost_total": {"image": 5.0}}
    assert TopicUsage(tmp_path).top_level() == usage.top_level()
