"""Scene-level control (issue #14): voices per scene, pinned seeds, reference images, a workflow per scene."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from fakes.tts_servers import FakeEdgeServer
from sceneforge.cli import app
from sceneforge.comfy.backend import upload_name
from sceneforge.config import Settings
from sceneforge.errors import SceneValidationError
from sceneforge.pipeline import agenerate_assets


@pytest.fixture
async def edge() -> AsyncIterator[FakeEdgeServer]:
    async with FakeEdgeServer() as srv:
        yield srv


@pytest.fixture
async def comfy() -> AsyncIterator[FakeComfyServer]:
    async with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        yield srv


def short(ssml_voice: str) -> str:
    """edge-tts writes 'Microsoft Server Speech Text to Speech Voice (ko-KR, SunHiNeural)' into the SSML."""
    locale, name = ssml_voice.rsplit("(", 1)[1].rstrip(")").split(", ")
    return f"{locale}-{name}"


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file() and p.name != "scenes.json"}


def face(path: Path, rgb: tuple[int, int, int]) -> Path:
    Image.new("RGB", (32, 32), rgb).save(path)
    return path


# ---------------------------------------------------------------------------------------- narration
async def test_a_dialogue_records_each_scene_with_its_own_voice(edge: FakeEdgeServer, tmp_path: Path):
    scenes = [{"script": "안녕하세요. 저는 인준입니다.", "voice": "ko-KR-InJoonNeural"},
              {"script": "반가워요. 저는 선희예요.", "voice": "ko-KR-SunHiNeural", "rate": 1.2},
              {"script": "둘 다 반갑습니다."}]
    s = Settings(out_dir=tmp_path, tts="edge", edge_url=edge.url, stages=("audio",))
    out = await agenerate_assets({"topic": "dialogue", "scenes": scenes}, s)
    spoken = [(short(r["voice"]), r["rate"]) for r in edge.requests if "voice" in r]
    assert sorted(spoken) == sorted([("ko-KR-InJoonNeural", "+0%"), ("ko-KR-SunHiNeural", "+20%"),
                                     ("ko-KR-InJoonNeural", "+0%")])  # the third speaks with the default
    assert all(Path(sc["audio_path"]).is_file() for sc in out["scenes"])
    assert out["scenes"][1]["voice"] == "ko-KR-SunHiNeural"  # the scene's own fields are kept

    # Changing one scene's voice re-records only that scene.
    root = tmp_path / "dialogue"
    before = mtimes(root)
    scenes[2]["voice"] = "ko-KR-SunHiNeural"
    await agenerate_assets({"topic": "dialogue", "scenes": scenes}, s)
    after = mtimes(root)
    assert {k for k in after if after[k] != before.get(k)} == {"audio_scene_3.mp3", "audio_scene_3.srt",
                                                               "audio_scene_3.words.json"}  # edge: word timings


async def test_an_unknown_voice_fails_before_any_work_with_the_nearest_names(edge: FakeEdgeServer, tmp_path: Path):
    scenes = [{"script": "하나"}, {"script": "둘", "voice": "ko-KR-SunHi"}]
    s = Settings(out_dir=tmp_path, tts="edge", edge_url=edge.url, stages=("audio",))
    with pytest.raises(SceneValidationError) as ei:
        await agenerate_assets({"topic": "t", "scenes": scenes}, s)
    assert ei.value.problems == [
        "scene 2: voice 'ko-KR-SunHi' is not an edge voice; did you mean ko-KR-SunHiNeural?"]
    assert not (tmp_path / "t").exists() and not [r for r in edge.requests if "voice" in r]


def test_espeak_voices_are_checked_offline_and_edge_names_map_to_languages(tmp_path: Path):
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps([{"script": "hello", "voice": "en-us+f3"}, {"script": "안녕", "voice": "ko-KR-SunHiNeural"}]))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"script": "hello", "voice": "klingon"}, {"script": "hi", "voice": "en+nosuch"}]))
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(ok), "--offline", "--stages", "audio", "--out", str(tmp_path / "o1")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["run", str(bad), "--offline", "--stages", "audio", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "scene 1: voice 'klingon' is not an espeak voice" in text and "scene 2: voice 'en+nosuch'" in text
    assert not (tmp_path / "o2").exists()
    # a run-level voice that does not exist is one problem for all the scenes that use it
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"script": "one"}, {"script": "two"}, {"script": "three", "voice": "en"}]))
    r = runner.invoke(app, ["run", str(plain), "--offline", "--stages", "audio", "--voice", "klingon",
                            "--out", str(tmp_path / "o3")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and text.count("klingon") == 1, text
    assert "scenes 1, 2: voice 'klingon' (the run's --voice) is not an espeak voice" in text


# ---------------------------------------------------------------------------------------- seeds, negatives
async def test_a_pinned_seed_and_negative_are_used_and_recorded(comfy: FakeComfyServer, tmp_path: Path):
    scenes = [{"script": "a", "image_prompt": "a cat"},
              {"script": "b", "image_prompt": "a dog", "seed": 42, "negative_prompt": "blurry, dark"}]
    s = Settings(out_dir=tmp_path, comfy_urls=(comfy.url,), workflow="sdxl", width=64, height=64, stages=("image",),
                 negative="text, watermark")
    out = await agenerate_assets({"topic": "pins", "scenes": scenes}, s)
    graphs = {j["graph"]["9"]["inputs"]["filename_prefix"]: j["graph"] for j in comfy.jobs}
    assert graphs["sceneforge/scene_2"]["3"]["inputs"]["seed"] == 42 and out["scenes"][1]["image_seed"] == 42
    assert graphs["sceneforge/scene_2"]["7"]["inputs"]["text"] == "blurry, dark"
    assert graphs["sceneforge/scene_1"]["7"]["inputs"]["text"] == "text, watermark"  # the run's own
    assert out["scenes"][0]["image_seed"] != 42
    # The same pin again: cached. Another pin: made again with it.
    await agenerate_assets({"topic": "pins", "scenes": scenes}, s)
    assert len(comfy.jobs) == 2
    scenes[1]["seed"] = 7
    out = await agenerate_assets({"topic": "pins", "scenes": scenes}, s)
    assert len(comfy.jobs) == 3 and out["scenes"][1]["image_seed"] == 7


async def test_offline_backends_honour_the_scene_fields(tmp_path: Path):
    scenes = [{"script": "hello there", "image_prompt": "a cat", "voice": "en-us", "seed": 5, "motion_seed": 77}]
    s = Settings(out_dir=tmp_path, offline=True, motion_enabled=True, motion_length=5)
    out = await agenerate_assets({"topic": "offline", "scenes": scenes}, s)
    sc = out["scenes"][0]
    assert sc["motion_seed"] == 77 and sc["image_seed"] == 5
    card = Image.open(sc["image_path"]).copy()
    scenes[0]["voice"] = "en-gb-x-rp"  # the card shows the voice: a new voice redraws it
    out2 = await agenerate_assets({"topic": "offline", "scenes": scenes}, s)
    assert Image.open(out2["scenes"][0]["image_path"]).tobytes() != card.tobytes()


# ---------------------------------------------------------------------------------------- reference images
async def test_a_reference_is_uploaded_once_per_content_and_set_on_its_node(comfy: FakeComfyServer, tmp_path: Path):
    hero, villain = face(tmp_path / "hero.png", (200, 30, 30)), face(tmp_path / "villain.png", (30, 30, 200))
    state = {"topic": "consistent", "reference_image": str(hero), "scenes": [
        {"script": "a", "image_prompt": "the hero in a cafe"},
        {"script": "b", "image_prompt": "the hero on a bus"},
        {"script": "c", "image_prompt": "the villain laughs", "reference_image": str(villain)}]}
    s = Settings(out_dir=tmp_path / "out", comfy_urls=(comfy.url,), workflow="flux-kontext", width=64, height=112,
                 stages=("image",))
    await agenerate_assets(state, s)
    uploads = [r for r in comfy.requests if r["path"] == "/upload/image"]
    assert len(uploads) == 2  # once per content, not once per scene
    by_scene = {j["graph"]["136"]["inputs"]["filename_prefix"]: j["graph"]["142"]["inputs"]["image"] for j in comfy.jobs}
    assert by_scene == {"sceneforge/scene_1": upload_name(hero), "sceneforge/scene_2": upload_name(hero),
                        "sceneforge/scene_3": upload_name(villain)}
    # The reference's bytes are part of the image's key: a changed face remakes the scenes that use it.
    face(hero, (10, 200, 10))
    await agenerate_assets(state, s)
    assert len(comfy.jobs) == 5


def test_reference_and_workflow_problems_stop_the_run_before_any_job(tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps({"topic": "t", "scenes": [
        {"script": "a", "image_prompt": "x"},
        {"script": "b", "image_prompt": "y", "reference_image": "notes.txt"},
        {"script": "c", "image_prompt": "z", "workflow": "sd15"}]}))
    with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        r = CliRunner().invoke(app, ["run", str(scenes), "--stages", "image", "--workflow", "flux-kontext",
                                     "--comfy-url", srv.url, "--out", str(tmp_path / "out")])
        jobs = len(srv.jobs)
    assert r.exit_code == 2 and jobs == 0 and not (tmp_path / "out").exists()
    out = " ".join(r.output.split())
    assert "scene 1: the run's workflow: bundled:flux-kontext takes a reference image" in out  # none given
    assert f"scene 2: reference_image {text} is not an image" in out  # relative to the scene file
    assert "scene 3: workflow: bundled:sd15 has no reference image node" not in out  # sd15 needs none: fine
    assert "scene 3" not in out


async def test_a_workflow_per_scene_runs_that_scene_with_it(comfy: FakeComfyServer, tmp_path: Path):
    scenes = [{"script": "a", "image_prompt": "a cat"}, {"script": "b", "image_prompt": "a dog", "workflow": "sd15"}]
    s = Settings(out_dir=tmp_path, comfy_urls=(comfy.url,), workflow="sdxl", width=64, height=64, stages=("image",))
    await agenerate_assets({"topic": "mixed", "scenes": scenes}, s)
    ckpt = {j["graph"]["9"]["inputs"]["filename_prefix"]: j["graph"]["4"]["inputs"]["ckpt_name"] for j in comfy.jobs}
    assert ckpt == {"sceneforge/scene_1": "sd_xl_base_1.0.safetensors",
                    "sceneforge/scene_2": "v1-5-pruned-emaonly.safetensors"}


async def test_a_run_fed_its_own_scenes_json_rerolls_motion_with_a_new_seed(comfy: FakeComfyServer, tmp_path: Path):
    s = Settings(out_dir=tmp_path, comfy_urls=(comfy.url,), workflow="sdxl", width=64, height=64, motion_width=64,
                 motion_height=64, motion_length=5, stages=("image", "motion"), motion_enabled=True)
    first = await agenerate_assets({"topic": "loop", "scenes": [{"script": "a", "image_prompt": "a cat"}]}, s)
    recorded = first["scenes"][0]["motion_seed"]
    # scenes.json fed back: cached as it is...
    again = await agenerate_assets(first, s)
    assert again["scenes"][0]["motion_seed"] == recorded and len(comfy.jobs) == 2
    # ...and a forced re-roll is a new clip (the recorded seed is not a pin), unless a seed is pinned.
    forced = await agenerate_assets(first, s.model_copy(update={"force": True, "stages": ("motion",)}))
    assert forced["scenes"][0]["motion_seed"] != recorded
    pinned = {**first, "scenes": [{**first["scenes"][0], "motion_seed": 99}]}
    del pinned["scenes"][0]["motion_frames_path"]  # a seed given without recorded frames is a pin
    out = await agenerate_assets(pinned, s.model_copy(update={"force": True, "stages": ("motion",)}))
    assert out["scenes"][0]["motion_seed"] == 99


def test_a_reference_that_declares_a_huge_canvas_is_a_scene_problem(tmp_path: Path):
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")  # tiny file, 400 megapixels
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps([{"script": "a", "image_prompt": "x", "reference_image": "bomb.png"},
                                  {"script": "b", "image_prompt": "y", "reference_image": "gone.png"}]))
    r = CliRunner().invoke(app, ["run", str(scenes), "--offline", "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "scene 1: reference_image" in text and "declares more pixels than a reference needs" in text
    assert "scene 2: reference_image" in text and "does not exist" in text
    assert not (tmp_path / "out").exists()
