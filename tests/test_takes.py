"""Takes: re-rolls keep every earlier asset; restoring one brings its bytes, its fields and its inputs back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sceneforge.cache import StageCache
from sceneforge.cli import app
from sceneforge.config import Settings
from sceneforge.errors import ConfigError, SceneValidationError
from sceneforge.layout import TopicLayout
from sceneforge.pipeline import Engine, aplan_run
from sceneforge.pipeline.topics import edit_scene, list_takes, load_topic, pin_seed, reroll_settings, restore_take
from sceneforge.takes import KEEP_TAKES, TakeStore

STATE = {"topic": "takes", "scenes": [{"script": "one", "image_prompt": "a red door"},
                                      {"script": "two", "image_prompt": "a blue door"}]}


def settings(tmp: Path, **kw) -> Settings:
    return Settings(**{"out_dir": tmp, "offline": True, "stages": ("audio", "image"), **kw})


async def run(s: Settings, layout: TopicLayout | None = None) -> None:
    sf = load_topic(layout) if layout else (await aplan_run([STATE], s)).topics[0]
    async with Engine(s) as engine:
        await engine.run_topic(sf, settings=s)


async def test_rerolls_keep_takes_and_restore_brings_one_back(tmp_path: Path):
    s = settings(tmp_path)
    await run(s)
    layout = TopicLayout(tmp_path, "takes")
    first = (layout.image_path(2)).read_bytes()
    assert [t.current for t in list_takes(layout, 2)["image"]] == [True]  # a first run keeps nothing extra
    assert not (layout.state_dir / "takes").exists()

    # Edit scene 2's prompt, run: a new image; the old one is a take.
    edit_scene(layout, 2, {"image_prompt": "a green door"})
    await run(s, layout)
    second = layout.image_path(2).read_bytes()
    takes = list_takes(layout, 2)["image"]
    assert second != first and [t.current for t in takes] == [False, True]
    assert takes[0].inputs["image_prompt"] == "a blue door" and takes[1].inputs["image_prompt"] == "a green door"
    assert len(list_takes(layout, 1)["image"]) == 1  # scene 1 was not touched

    # Back to the first take: bytes, scenes.json and the prompt that made it.
    sf = restore_take(layout, 2, "image", takes[0].id)
    assert layout.image_path(2).read_bytes() == first
    state = json.loads(layout.scenes_json.read_text())
    assert state["scenes"][1]["image_prompt"] == "a blue door" and state["scenes"][1]["image_path"] == str(
        layout.image_path(2))
    assert sf.scenes[1].image_prompt == "a blue door"
    assert [t.current for t in list_takes(layout, 2)["image"]] == [True, False]
    # ...and a normal run now keeps it: nothing is remade.
    before = layout.image_path(2).stat().st_mtime_ns
    await run(s, layout)
    assert layout.image_path(2).stat().st_mtime_ns == before


async def test_reroll_settings_make_one_new_take_and_prune_to_the_last_ten(tmp_path: Path):
    s = settings(tmp_path)
    await run(s)
    layout = TopicLayout(tmp_path, "takes")
    for i in range(KEEP_TAKES + 2):
        edit_scene(layout, 1, {"script": f"take {i}"})
        await run(reroll_settings(s, 1, "audio"), layout)
    takes = list_takes(layout, 1)["audio"]
    assert len(takes) == KEEP_TAKES + 1 and takes[-1].current  # ten kept, plus the current one
    assert takes[-1].inputs["script"] == f"take {KEEP_TAKES + 1}"
    assert len(list_takes(layout, 2)["audio"]) == 1


def test_edits_are_checked_and_owned_fields_refused(tmp_path: Path):
    layout = TopicLayout(tmp_path, "t")
    layout.root.mkdir(parents=True)
    layout.scenes_json.write_text(json.dumps(STATE))
    with pytest.raises(SceneValidationError, match="scene 2: image_path is made by sceneforge"):
        edit_scene(layout, 2, {"image_path": "/etc/passwd"})
    with pytest.raises(SceneValidationError, match="scene 1: rate must be"):
        edit_scene(layout, 1, {"rate": 99})
    with pytest.raises(ConfigError, match="scenes 1 to 2, not 3"):
        edit_scene(layout, 3, {"script": "x"})
    assert json.loads(layout.scenes_json.read_text()) == STATE  # nothing written
    sf = edit_scene(layout, 1, {"voice": "ko-KR-SunHiNeural", "extra": {"keep": 1}})
    pin_seed(sf, 1, "image", 42)
    assert sf.scenes[0].seed == 42 and json.loads(layout.scenes_json.read_text())["scenes"][0]["extra"] == {"keep": 1}
    with pytest.raises(ConfigError, match="no seed"):
        pin_seed(sf, 1, "audio", 1)


def test_cli_lists_and_restores_takes(tmp_path: Path):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps(STATE))
    runner = CliRunner()
    base = ["run", str(scenes), "--offline", "--stages", "audio,image", "--out", str(tmp_path / "out")]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--scene", "2", "--force"]).exit_code == 0
    folder = tmp_path / "out" / "takes"
    listed = runner.invoke(app, ["takes", "list", str(folder), "--scene", "2", "--json"])
    assert listed.exit_code == 0, listed.output
    image = json.loads(listed.stdout)["2"]["image"]
    assert len(image) == 2 and [t["current"] for t in image] == [False, True]
    table = runner.invoke(app, ["takes", "list", str(folder)], env={"COLUMNS": "80"})
    assert all(t["id"] in table.stdout for t in image), table.stdout  # whole, ready for `takes restore`
    bad = runner.invoke(app, ["takes", "restore", str(folder), "nope", "--scene", "2", "--stage", "image"])
    assert bad.exit_code == 2 and "has no image take 'nope'" in bad.output
    ok = runner.invoke(app, ["takes", "restore", str(folder), image[0]["id"], "--scene", "2", "--stage", "image"])
    assert ok.exit_code == 0, ok.output
    store = TakeStore(StageCache(TopicLayout(tmp_path / "out", "takes")))
    assert store.current("image", 2).id == image[0]["id"]


async def test_a_restored_asset_is_a_copy_and_a_damaged_take_is_refused(tmp_path: Path):
    s = settings(tmp_path)
    await run(s)
    layout = TopicLayout(tmp_path, "takes")
    edit_scene(layout, 1, {"image_prompt": "a green door"})
    await run(s, layout)
    old, new = list_takes(layout, 1)["image"]
    restore_take(layout, 1, "image", old.id)
    asset = layout.image_path(1)
    kept = layout.state_dir / "takes" / "image" / "scene_1" / old.id / "0000.png"
    assert asset.stat().st_ino != kept.stat().st_ino  # editing the asset in place cannot change the take
    before = kept.read_bytes()
    asset.write_bytes(asset.read_bytes()[:-10] + b"0123456789")
    assert kept.read_bytes() == before
    # A take whose bytes changed since it was kept is refused, not restored.
    newer = layout.state_dir / "takes" / "image" / "scene_1" / new.id / "0000.png"
    newer.write_bytes(b"not the image any more")
    with pytest.raises(FileNotFoundError, match=f"take {new.id} is damaged"):
        restore_take(layout, 1, "image", new.id)


async def test_restore_brings_back_the_inputs_that_made_the_take(tmp_path: Path):
    s = settings(tmp_path)
    await run(s)
    layout = TopicLayout(tmp_path, "takes")
    edit_scene(layout, 2, {"negative_prompt": "blurry", "image_prompt": "a door at night"})
    await run(s, layout)
    first = list_takes(layout, 2)["image"][0]
    sf = restore_take(layout, 2, "image", first.id)
    assert sf.scenes[1].negative_prompt is None and sf.scenes[1].image_prompt == "a blue door"
    await run(s, layout)
    assert [t.current for t in list_takes(layout, 2)["image"]] == [True, False]  # kept by the next run


def test_takes_commands_refuse_bad_scenes_stages_and_folders(tmp_path: Path):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps(STATE))
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(scenes), "--offline", "--stages", "audio,image",
                               "--out", str(tmp_path / "out")]).exit_code == 0
    folder = tmp_path / "out" / "takes"
    r = runner.invoke(app, ["takes", "list", str(folder), "--scene", "9"])
    assert r.exit_code == 2 and "--scene 9" in r.output and "scenes 1 to 2" in r.output
    r = runner.invoke(app, ["takes", "list", str(tmp_path)])
    assert r.exit_code == 2 and "no scenes.json here" in " ".join(r.output.split())
    with pytest.raises(ConfigError, match="unknown stage 'video'"):
        restore_take(TopicLayout(tmp_path / "out", "takes"), 1, "video", "x")


async def test_image_and_motion_takes_come_back_as_a_pair(tmp_path: Path):
    s = settings(tmp_path, stages=("audio", "image", "motion"), motion_enabled=True, motion_length=5)
    await run(s)
    layout = TopicLayout(tmp_path, "takes")

    def frames() -> list[bytes]:
        return [p.read_bytes() for p in sorted(layout.motion_dir(1).glob("*.png"))]

    image_a, motion_a = layout.image_path(1).read_bytes(), frames()
    edit_scene(layout, 1, {"image_prompt": "a door in the snow"})
    await run(s, layout)  # image B and the motion made from it
    image_b, motion_b = layout.image_path(1).read_bytes(), frames()
    assert image_b != image_a and motion_b != motion_a
    a, b = list_takes(layout, 1)["image"]
    ma, mb = list_takes(layout, 1)["motion"]
    assert ma.made_from and mb.made_from and ma.made_from != mb.made_from

    restore_take(layout, 1, "image", a.id)  # image A brings back the motion made from it
    assert layout.image_path(1).read_bytes() == image_a and frames() == motion_a
    assert [t.current for t in list_takes(layout, 1)["motion"]] == [True, False]
    restore_take(layout, 1, "motion", mb.id)  # motion B brings back image B
    assert frames() == motion_b and layout.image_path(1).read_bytes() == image_b
    saved = json.loads(layout.scenes_json.read_text())["scenes"][0]
    assert saved["image_prompt"] == "a door in the snow" and len(saved["motion_frames_path"]) == 5

    # An image made without motion (an image-only run): restoring it puts the motion aside, nothing shows
    # motion of another image, and the next run makes the motion of the image that is there.
    edit_scene(layout, 1, {"image_prompt": "a door at night"})
    await run(s.model_copy(update={"stages": ("image",)}), layout)
    c = list_takes(layout, 1)["image"][-1]
    restore_take(layout, 1, "image", b.id)
    assert frames() == motion_b  # B's motion is current again
    restore_take(layout, 1, "image", c.id)
    saved = json.loads(layout.scenes_json.read_text())["scenes"][0]
    assert "motion_frames_path" not in saved and not any(t.current for t in list_takes(layout, 1)["motion"])
    await run(s, layout)
    assert frames() not in (motion_a, motion_b) and len(list_takes(layout, 1)["motion"]) == 3


def test_a_topic_written_with_relative_paths_is_read_from_any_folder(tmp_path: Path, monkeypatch):
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps(STATE))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["run", "s.json", "--offline", "--stages", "audio,image", "--out", "out"]).exit_code == 0
    assert runner.invoke(app, ["run", "s.json", "--offline", "--stages", "audio,image", "--out", "out",
                               "--scene", "1", "--force"]).exit_code == 0
    written = json.loads((tmp_path / "out" / "takes" / "scenes.json").read_text())["scenes"][0]["image_path"]
    assert not Path(written).is_absolute()  # as the original system wrote them: under --out as given
    old = list_takes(TopicLayout(tmp_path / "out", "takes"), 1)["image"][0].id
    monkeypatch.chdir(tmp_path / "out")  # somewhere else: the service's folder, another shell
    assert runner.invoke(app, ["takes", "restore", "takes", old, "--scene", "1", "--stage", "image"]).exit_code == 0
    sf = load_topic(TopicLayout(tmp_path / "out", "takes"))
    assert [Path(s.image_path) for s in sf.scenes] == [tmp_path / "out" / "takes" / f"image_scene_{n}.png"
                                                       for n in (1, 2)]
