"""The bad-input catalogue sent as request bodies: the command line's lines, and nothing written.

A body that is not JSON text at all (empty, binary, not UTF-8, a syntax error) is ``400``; JSON that
is no usable scene file is ``422``. Either way ``problems`` holds the line ``sceneforge run`` prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes.backends import FakeTTS

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED: dict[str, str] = json.loads((DATA / "bad_expected.json").read_text(encoding="utf-8"))
#: Files naming a path on this machine: the service never reads those (it only takes uploaded references).
LOCAL_PATHS = {"41_reference_missing.json": "through the service a reference is an uploaded file",
               "42_reference_not_an_image.json": "through the service a reference is an uploaded file",
               "46_topic_reference_missing.json": "through the service a reference is an uploaded file",
               "44_workflow_unknown.json": "through the service choose a bundled workflow"}
NOT_JSON = {"01_not_json.json", "02_empty_file.json", "03_binary_garbage.json", "26_utf16_bom_garbage.json"}


@pytest.fixture
async def svc(start, tmp_path: Path):
    from service_helpers import offline

    return await start(offline(tmp_path, tts="fake", offline=False, image_backend="storyboard"))


async def test_every_bad_file_is_refused_with_the_cli_line_and_nothing_is_written(svc):
    assert len(EXPECTED) >= 30
    for name, line in sorted(EXPECTED.items()):
        status, body = await svc.call("POST", "/api/topics", data=(DATA / "bad" / name).read_bytes(),
                                      headers={"Content-Type": "application/json"})
        assert status == (400 if name in NOT_JSON else 422), (name, status, body)
        if name in LOCAL_PATHS:  # a path on the service's machine: refused as such (test_references.py)
            assert any(LOCAL_PATHS[name] in p for p in body["problems"]), body
        else:
            assert any(line in p for p in body["problems"]), (name, body)
        assert "Traceback" not in json.dumps(body)
    assert not any(svc.out.iterdir()), list(svc.out.iterdir())
    assert sum(FakeTTS.calls.values()) == 0
    status, listing = await svc.call("GET", "/api/topics")
    assert (status, listing) == (200, [])


async def test_a_string_body_is_never_taken_for_a_path(svc, tmp_path: Path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"topic": "stolen", "scenes": [{"script": "x", "image_prompt": "y"}]}))
    for body in (str(real), "/etc/passwd", "scenes"):
        status, answer = await svc.call("POST", "/api/topics", body=body)
        assert status == 422 and answer["problems"] == [
            "expected a list of scenes or an object with a 'scenes' list, got string"], answer
    assert not (svc.out / "stolen").exists()


async def test_every_problem_is_listed_at_once_without_a_file_name(svc):
    payload = {"topic": "many", "scenes": [{"script": "", "image_prompt": "p"}, {"image_prompt": "q"},
                                           {"script": "ok", "image_prompt": 3}]}
    status, body = await svc.call("POST", "/api/topics", body=payload)
    assert status == 422
    assert body == {"detail": "3 problems in the input",
                    "problems": ["scene 1: script is empty", "scene 2: script is missing",
                                 "scene 3: image_prompt must be a string, got int"]}
    assert not (svc.out / "many").exists()


async def test_a_bad_edit_is_422_with_the_scene_line_and_changes_nothing(svc):
    await svc.submit({"topic": "edit", "scenes": [{"script": "one", "image_prompt": "p"}]})
    await svc.wait("edit")
    before = (svc.out / "edit" / "scenes.json").read_bytes()
    for changes, line in (({"script": ""}, "scene 1: script is empty"),
                          ({"script": 5}, "scene 1: script must be a string, got int"),
                          ({"image_path": "/etc/passwd"}, "scene 1: image_path is made by sceneforge and cannot be edited"),
                          ({"seed": -3}, "scene 1: seed must be a whole number from 0 to 2^64-1, got -3")):
        status, body = await svc.call("PATCH", "/api/topics/edit/scenes/1", body=changes)
        assert status == 422 and body["problems"] == [line], (changes, body)
    status, body = await svc.call("PATCH", "/api/topics/edit/scenes/1", body=["script"])
    assert status == 422 and "must be an object of scene fields" in body["detail"]
    assert (svc.out / "edit" / "scenes.json").read_bytes() == before


async def test_a_bad_regenerate_body_is_422_naming_the_field(svc):
    await svc.submit({"topic": "re", "scenes": [{"script": "one", "image_prompt": "p"}]})
    await svc.wait("re")
    for body, word in (({"stage": "video"}, "stage"), ({"stage": "image", "seed": -1}, "seed"),
                       ({"stage": "image", "extra": 1}, "extra"), ({}, "stage")):
        status, answer = await svc.call("POST", "/api/topics/re/scenes/1/regenerate", body=body)
        assert status == 422 and answer["problems"][0].startswith(word), (body, answer)
    status, answer = await svc.call("POST", "/api/topics/re/scenes/1/regenerate", body={"stage": "motion"})
    assert status == 422 and answer["detail"] == "motion is not enabled for this topic"
    status, answer = await svc.call("POST", "/api/topics/re/scenes/1/regenerate", body={"stage": "audio", "seed": 3})
    assert status == 422 and answer["detail"] == "narration has no seed"


async def test_an_edit_the_run_would_refuse_is_422_and_saves_nothing(start, tmp_path: Path):
    from service_helpers import offline

    svc = await start(offline(tmp_path))  # espeak: its voices are known
    await svc.submit({"topic": "strict", "scenes": [{"script": "one", "image_prompt": "p"},
                                                    {"script": "two", "image_prompt": "q"}]})
    first = await svc.wait("strict")
    before = (svc.out / "strict" / "scenes.json").read_bytes()
    for changes, words in (({"script": None}, "scene 2: script is missing"),
                           ({"image_prompt": None}, "scene 2: image_prompt"),
                           ({"voice": "klingon"}, "scene 2: voice 'klingon' is not an espeak voice"),
                           ({"reference_image": "references/nope.png"}, "scene 2: reference_image")):
        status, body = await svc.call("PATCH", "/api/topics/strict/scenes/2", body=changes)
        assert status == 422 and any(words in p for p in body["problems"]), (changes, body)
        assert str(svc.out) not in json.dumps(body)  # no path of the service's machine in the answer
    assert (svc.out / "strict" / "scenes.json").read_bytes() == before
    _, state = await svc.call("GET", "/api/topics/strict")
    assert state["status"] == "done" and state["last_event_id"] == first["last_event_id"]  # no job was queued


async def test_a_change_while_a_command_line_run_holds_the_topic_is_409_at_once(svc, monkeypatch):
    from sceneforge.layout import TopicLayout
    from sceneforge.lock import topic_lock
    from sceneforge.pipeline import workspace

    await svc.submit({"topic": "held", "scenes": [{"script": "one", "image_prompt": "p"}]})
    await svc.wait("held")
    monkeypatch.setattr(workspace, "LOCK_WAIT", 0.0)
    with topic_lock(TopicLayout(svc.out, "held")):  # as `sceneforge run` holds it
        status, body = await svc.call("PATCH", "/api/topics/held/scenes/1", body={"script": "changed"})
        assert status == 409 and "outside the service" in body["detail"] and "--wait-lock" not in body["detail"]
        for method, path, payload in (("DELETE", "/api/topics/held", None),
                                      ("POST", "/api/topics/held/scenes/1/regenerate", {"stage": "image"}),
                                      ("POST", "/api/topics/held/preview", None)):
            status, body = await svc.call(method, path, body=payload)
            assert status == 409 and "outside the service" in body["detail"], (path, body)
    assert json.loads((svc.out / "held" / "scenes.json").read_text())["scenes"][0]["script"] == "one"
