"""The topic workspace reads and checks ``scenes.json`` once per change where once is enough."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sceneforge.pipeline.topics as rules
from sceneforge.errors import ConfigError
from sceneforge.pipeline import Topic
from sceneforge.pipeline.workspace import Reroll


@pytest.fixture
def topic(tmp_path: Path) -> Topic:
    t = Topic.open(tmp_path, "t")
    t.root.mkdir()
    scenes = [{"script": f"line {n}", "image_prompt": f"prompt {n}"} for n in (1, 2)]
    t.layout.scenes_json.write_text(json.dumps({"topic": "t", "scenes": scenes}))
    return t


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    parse = rules.parse_state
    monkeypatch.setattr(rules, "parse_state", lambda *a, **k: (seen.append("parse"), parse(*a, **k))[1])
    return seen


def test_an_edit_checked_before_is_saved_without_checking_again(topic: Topic, parses: list[str]) -> None:
    checked = topic.edited(1, {"script": "new"})
    parses.clear()
    saved = topic.edit(1, {"script": "new"})
    assert parses == [] and saved.scenes[0].script == checked.scenes[0].script == "new"
    assert topic.read().scenes[0].script == "new"


def test_an_edit_after_scenes_json_changed_reads_it_again(topic: Topic, parses: list[str]) -> None:
    topic.edited(1, {"script": "new"})
    once = len(parses)  # reading the topic, and checking the changed scene
    data = json.loads(topic.layout.scenes_json.read_text())
    data["scenes"][1]["script"] = "changed by a run meanwhile"
    topic.layout.scenes_json.write_text(json.dumps(data))
    parses.clear()
    topic.edit(1, {"script": "new"})
    assert len(parses) == once
    assert [s.script for s in topic.read().scenes] == ["new", "changed by a run meanwhile"]
    parses.clear()
    topic.edited(1, {"script": "x"})
    topic.edit(1, {"script": "other"})  # another change than the one checked
    assert len(parses) == 2 * once and topic.read().scenes[0].script == "other"


def test_begin_reroll_returns_what_it_wrote(topic: Topic) -> None:
    sf = topic.begin_reroll(Reroll(2, "image", seed=1234))
    assert sf.state() == topic.read().state() and sf.scenes[1].seed == 1234


def test_plan_reroll_refuses_a_narration_seed_and_a_missing_scene(topic: Topic) -> None:
    with pytest.raises(ConfigError, match="narration has no seed"):
        topic.plan_reroll(1, "audio", seed=3)
    with pytest.raises(ConfigError, match="scenes 1 to 2"):
        topic.plan_reroll(3, "image")
    assert topic.plan_reroll(1, "audio") == Reroll(1, "audio")
    assert topic.plan_reroll(1, "image", seed=9) == Reroll(1, "image", 9)
