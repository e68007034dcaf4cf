"""The topic's answer: ``scenes.json`` read once per answer, its cache keyed by the version it read."""

from __future__ import annotations

import json
import os
from pathlib import Path

from service_helpers import topic

from sceneforge.pipeline import TopicLayout
from sceneforge.service import views


def _write(folder: Path, script: str) -> None:
    tmp = folder / ".tmp"
    tmp.write_text(json.dumps({"topic": "t", "scenes": [{"script": script}]}))
    os.replace(tmp, folder / "scenes.json")


def test_scenes_replaced_while_they_are_encoded_are_not_kept_as_the_new_file(tmp_path: Path, monkeypatch):
    (tmp_path / "t").mkdir()
    _write(tmp_path / "t", "old")
    layout = TopicLayout(tmp_path, "t")
    real = views.read_state

    def racing(layout: TopicLayout):  # the engine replaces scenes.json right after it was read
        read = real(layout)
        _write(tmp_path / "t", "a newer line")
        return read

    monkeypatch.setattr(views, "read_state", racing)
    assert json.loads(views.scenes_json(layout)[0])["script"] == "old"
    monkeypatch.setattr(views, "read_state", real)
    assert json.loads(views.scenes_json(layout)[0])["script"] == "a newer line"
    views.forget(layout)


def test_one_answer_stats_and_reads_scenes_json_once(tmp_path: Path, monkeypatch):
    (tmp_path / "t").mkdir()
    _write(tmp_path / "t", "line")
    layout = TopicLayout(tmp_path, "t")
    stats: list[str] = []
    real_stat = os.stat

    def counting(path, *a, **kw):
        stats.append(str(path))
        return real_stat(path, *a, **kw)

    from sceneforge.service.scene_states import SceneStates
    from sceneforge.service.store import TopicRecord

    record = TopicRecord(slug="t", topic="t")
    states = SceneStates(1)
    monkeypatch.setattr(views.os, "stat", counting)
    views.topic_answer(record, layout, lambda r: states)
    assert stats.count(str(layout.scenes_json)) == 1
    views.forget(layout)


async def test_scenes_the_command_line_added_have_a_state_in_the_first_answer(start):
    svc = await start()
    await svc.submit(topic("grown", 1))
    await svc.wait("grown")
    path = svc.out / "grown" / "scenes.json"
    state = json.loads(path.read_text())
    state["scenes"].append({"script": "A line the command line added."})
    path.write_text(json.dumps(state))
    status, answer = await svc.call("GET", "/api/topics/grown")
    assert status == 200 and [s["n"] for s in answer["scenes"]] == [1, 2]
    assert [s["state"]["phase"] for s in answer["scenes"]] == ["done", "done"]
