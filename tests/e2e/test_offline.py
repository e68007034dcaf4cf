"""The CLI end to end, offline, on the bundled Korean example: outputs, state, and the cache.

``run --offline --motion`` uses espeak narration, storyboard images and kenburns
motion, so this runs without a network or a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mutagen.mp3 import MP3
from PIL import Image
from typer.testing import CliRunner

from sceneforge.cache import StageCache
from sceneforge.cli import app
from sceneforge.layout import TopicLayout, slugify
from sceneforge.takes import TakeStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ai-shorts.ko.json"
RUN = ("--offline", "--motion", "--motion-length", "9")
FRAMES = [f"frame_{i:04d}.png" for i in range(1, 10)]
# The example has no fields sceneforge does not know; add some to check they survive.
UNKNOWN_TOP = {"channel": "테스트 채널", "meta": {"version": 2}}
UNKNOWN_SCENE = {"mood": "차분함", "tags": ["ai", "intro"]}

runner = CliRunner()


def invoke(*args: object) -> str:
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def stage_events(path: Path) -> dict[str, set[tuple[str, int]]]:
    """``kind -> {(stage, scene)}`` of the scene events of a run's ``--events`` file."""
    out: dict[str, set[tuple[str, int]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if "scene" in e:
            out.setdefault(e["kind"], set()).add((e["stage"], e["scene"]))
    return out


def snapshot(root: Path) -> dict[str, int]:
    """mtime of every file under the topic folder, except the two a run always writes and the kept takes."""
    skip = {Path("scenes.json"), Path(".sceneforge/run.lock")}
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root) not in skip and "takes" not in p.relative_to(root).parts
    }



def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


@pytest.fixture
def example(tmp_path: Path) -> Path:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.update(UNKNOWN_TOP)
    data["scenes"][0].update(UNKNOWN_SCENE)
    f = tmp_path / "ai-shorts.ko.json"
    f.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return f


def check_outputs(root: Path, source: dict) -> None:
    for n in range(1, 6):
        mp3 = root / f"audio_scene_{n}.mp3"
        assert MP3(str(mp3)).info.length > 0.5, mp3
        with Image.open(root / f"image_scene_{n}.png") as im:
            assert im.format == "PNG"
            assert im.width * 16 == im.height * 9, (n, im.size)
        assert sorted(p.name for p in (root / f"motion_scene_{n}").iterdir()) == FRAMES

    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    assert state["topic"] == source["topic"]
    for k, v in UNKNOWN_TOP.items():
        assert state[k] == v
    assert len(state["scenes"]) == 5
    for n, (s, given) in enumerate(zip(state["scenes"], source["scenes"]), 1):
        assert s["script"] == given["script"] and s["image_prompt"] == given["image_prompt"]
        assert Path(s["audio_path"]).resolve() == (root / f"audio_scene_{n}.mp3").resolve()
        assert s["audio_duration"] > 0.5
        assert Path(s["image_path"]).resolve() == (root / f"image_scene_{n}.png").resolve()
        assert [Path(p).name for p in s["motion_frames_path"]] == FRAMES
        assert all(Path(p).resolve().parent == (root / f"motion_scene_{n}").resolve() for p in s["motion_frames_path"])
        assert s["motion_fps"] > 0
        assert isinstance(s["motion_seed"], int)
    for k, v in UNKNOWN_SCENE.items():
        assert state["scenes"][0][k] == v


def test_offline_end_to_end_and_cache(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = json.loads(example.read_text(encoding="utf-8"))
    root = out / slugify(source["topic"])

    invoke("run", example, *RUN, "--out", out)
    check_outputs(root, source)
    before = snapshot(root)
    assert len([k for k in before if not k.startswith(".sceneforge/")]) == 5 * (1 + 1 + 1 + 9)  # mp3, srt, png, frames

    # Same input again: everything comes from the cache, no asset or cache record is rewritten.
    events = tmp_path / "second.jsonl"
    invoke("run", example, *RUN, "--out", out, "--events", events)
    assert changed(before, snapshot(root)) == set()
    check_outputs(root, source)
    # Recorded, not timed: every scene of every stage came from the cache and none was started.
    every = {(stage, n) for stage in ("audio", "image", "motion") for n in range(1, 6)}
    assert stage_events(events) == {"scene_cached": every}

    # A new script for scene 2: only its narration (and subtitles, and their cache record) is redone.
    source["scenes"][1]["script"] = "그런데 인공지능이 정확히 무엇을 하는지 알고 계신가요?"
    example.write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
    before = snapshot(root)
    invoke("run", example, *RUN, "--out", out)
    assert changed(before, snapshot(root)) == {
        "audio_scene_2.mp3", "audio_scene_2.srt", ".sceneforge/audio/scene_2.json",
    }
    takes = TakeStore(StageCache(TopicLayout(out, root.name))).list("audio", 2)
    assert len(takes) == 2 and [t.current for t in takes] == [False, True]  # the old narration is kept
    assert takes[1].inputs["script"] == source["scenes"][1]["script"] != takes[0].inputs["script"]
    check_outputs(root, source)

    # Force one image of one scene: only that image (and its cache record) is rewritten.
    before = snapshot(root)
    invoke("run", example, *RUN, "--out", out, "--scene", "3", "--force", "--stages", "image")
    assert changed(before, snapshot(root)) == {"image_scene_3.png", ".sceneforge/image/scene_3.json"}
    assert len(TakeStore(StageCache(TopicLayout(out, root.name))).list("image", 3)) == 2


def test_partial_stage_run_keeps_other_stages_in_scenes_json(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    invoke("run", example, *RUN, "--out", out)
    root = out / slugify(json.loads(example.read_text(encoding="utf-8"))["topic"])
    invoke("run", example, *RUN, "--out", out, "--scene", "3", "--force", "--stages", "image")
    check_outputs(root, json.loads(example.read_text(encoding="utf-8")))
