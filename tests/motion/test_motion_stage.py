"""The motion stage with the ``wan`` backend, through the original system's node function ``amotion_generator``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from motion_helpers import make_image, video_only

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings
from sceneforge.errors import ConfigError, GenerationError
from sceneforge.layout import TopicLayout
from sceneforge.motion.wan import upload_name
from sceneforge.pipeline.nodes import amotion_generator, motion_generator


def settings(tmp: Path, srv: FakeComfyServer | None, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        out_dir=tmp / "out", stages=("motion",), motion_enabled=True, motion_length=9,
        motion_width=64, motion_height=64, comfy_urls=(srv.url if srv else "http://127.0.0.1:1",),
    )
    base.update(kw)
    return Settings(**base)


def state(tmp: Path, topic: str = "wan topic") -> dict[str, Any]:
    """Two scenes with images; scene 1 has its own motion prompt."""
    root = TopicLayout.for_topic(tmp / "out", topic).root
    i1 = make_image(root / "image_scene_1.png", (200, 30, 30))
    i2 = make_image(root / "image_scene_2.png", (30, 200, 30))
    return {"topic": topic, "keep": "me", "scenes": [
        {"script": "one", "image_prompt": "a red barn", "motion_prompt": "the barn door swings open",
         "image_path": str(i1), "x": 1},
        {"script": "two", "image_prompt": "a green field", "image_path": str(i2)},
    ]}


def graphs_by_scene(srv: FakeComfyServer) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for p in srv.prompts:
        g = p["prompt"]
        n = int(g["200"]["inputs"]["filename_prefix"].rsplit("_", 1)[1])
        out.setdefault(n, []).append(g)
    return out


def no_parts(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".part")]


async def test_frames_land_in_motion_scene_folders(wan_server, tmp_path, sleeps):
    st = state(tmp_path)
    out = await amotion_generator(st, settings(tmp_path, wan_server), sleep=sleeps)
    root = TopicLayout.for_topic(tmp_path / "out", "wan topic").root
    assert out["keep"] == "me" and out["scenes"][0]["x"] == 1
    for n, scene in enumerate(out["scenes"], 1):
        frames = scene["motion_frames_path"]
        assert frames == [str(root / f"motion_scene_{n}" / f"frame_{i:04d}.png") for i in range(1, 10)]
        assert all(Path(f).stat().st_size > 0 for f in frames)
        assert scene["motion_fps"] == 16.0 and isinstance(scene["motion_seed"], int)
        assert scene["motion_video_path"] == str(root / f"motion_scene_{n}.mp4")  # the workflow's SaveVideo
        assert Path(scene["motion_video_path"]).is_file()
    assert no_parts(root) and sleeps.waits == []
    by_scene = graphs_by_scene(wan_server)
    g1, g2 = by_scene[1][0], by_scene[2][0]
    assert g1["93"]["inputs"]["text"] == "the barn door swings open"  # motion_prompt wins
    assert g2["93"]["inputs"]["text"] == "a green field"  # else the image prompt
    assert g1["97"]["inputs"]["image"] == upload_name(root / "image_scene_1.png")
    assert g2["97"]["inputs"]["image"] == upload_name(root / "image_scene_2.png")
    assert g1["86"]["inputs"]["noise_seed"] == out["scenes"][0]["motion_seed"]
    assert (g1["98"]["inputs"]["width"], g1["98"]["inputs"]["height"], g1["98"]["inputs"]["length"]) == (64, 64, 9)


async def test_video_only_workflow_sets_motion_video_path(wan_server, tmp_path, sleeps, small_mp4):
    wan_server.outputs_for = video_only(wan_server, small_mp4)
    out = await amotion_generator(state(tmp_path), settings(tmp_path, wan_server), sleep=sleeps)
    root = TopicLayout.for_topic(tmp_path / "out", "wan topic").root
    scene = out["scenes"][1]
    assert scene["motion_video_path"] == str(root / "motion_scene_2.mp4")
    assert (root / "motion_scene_2.mp4").read_bytes() == small_mp4
    assert [Path(f).name for f in scene["motion_frames_path"]] == [f"frame_{i:04d}.png" for i in range(1, 10)]
    assert sorted(p.name for p in (root / "motion_scene_2").iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 10)]
    assert no_parts(root)


async def test_missing_image_fails_before_any_job(wan_server, tmp_path, sleeps):
    st = state(tmp_path)
    st["scenes"][1]["image_path"] = str(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError, match="scene 2"):
        await amotion_generator(st, settings(tmp_path, wan_server), sleep=sleeps)
    assert wan_server.prompts == [] and wan_server.jobs == []


def test_motion_disabled_passes_scenes_through(tmp_path):
    st = state(tmp_path)
    out = motion_generator(st, settings(tmp_path, None, motion_enabled=False))
    assert out == st
    assert not (TopicLayout.for_topic(tmp_path / "out", "wan topic").root / "motion_scene_1").exists()


async def test_bad_length_is_a_config_error_before_any_job(wan_server, tmp_path, sleeps):
    with pytest.raises(ConfigError, match="motion length 10 is not 4k"):
        await amotion_generator(state(tmp_path), settings(tmp_path, wan_server, motion_length=10), sleep=sleeps)
    assert wan_server.prompts == [] and sleeps.waits == []


@pytest.mark.parametrize(("fault", "times", "waits"), [("prompt_500", 2, [3.0, 6.0]), ("view_truncated", 1, [3.0]),
                                                       ("execution_error", 1, [3.0])])
async def test_retry_waits_3_then_6(wan_server, tmp_path, sleeps, fault, times, waits):
    st = state(tmp_path)
    st["scenes"] = st["scenes"][:1]
    wan_server.fault(fault, times=times)
    out = await amotion_generator(st, settings(tmp_path, wan_server), sleep=sleeps)
    assert sleeps.waits == waits
    root = TopicLayout.for_topic(tmp_path / "out", "wan topic").root
    frames = out["scenes"][0]["motion_frames_path"]
    assert len(frames) == 9 and sorted(p.name for p in (root / "motion_scene_1").iterdir()) == [Path(f).name for f in frames]
    assert no_parts(root) and not list(root.glob(".motion_scene_*"))


async def test_truncated_download_every_time_fails_cleanly(wan_server, tmp_path, sleeps):
    st = state(tmp_path)
    st["scenes"] = st["scenes"][:1]
    wan_server.fault("view_truncated")
    with pytest.raises(GenerationError, match="scene 1") as info:
        await amotion_generator(st, settings(tmp_path, wan_server), sleep=sleeps)
    assert "gave up after 3 attempts" in info.value.__notes__ and sleeps.waits == [3.0, 6.0]
    root = TopicLayout.for_topic(tmp_path / "out", "wan topic").root
    assert not (root / "motion_scene_1").exists() and no_parts(root) and not list(root.glob(".motion_scene_*"))


async def test_rejected_upload_is_not_retried(wan_server, tmp_path, sleeps):
    st = state(tmp_path)
    st["scenes"] = st["scenes"][:1]
    wan_server.fault("upload_400")
    with pytest.raises(GenerationError, match="rejected the upload"):
        await amotion_generator(st, settings(tmp_path, wan_server), sleep=sleeps)
    assert sleeps.waits == [] and wan_server.prompts == []


async def test_cache_reruns_only_what_changed(wan_server, tmp_path, sleeps):
    s = settings(tmp_path, wan_server)
    first = await amotion_generator(state(tmp_path), s, sleep=sleeps)
    assert len(wan_server.prompts) == 2

    again = await amotion_generator(first, s, sleep=sleeps)
    assert len(wan_server.prompts) == 2  # unchanged: nothing submitted
    assert again["scenes"] == first["scenes"]
    uploads = [r for r in wan_server.requests if r["path"].endswith("/upload/image")]
    assert len(uploads) == 2

    # new bytes for scene 2's image: only scene 2 runs again
    make_image(Path(first["scenes"][1]["image_path"]), (0, 0, 250))
    third = await amotion_generator(first, s, sleep=sleeps)
    assert len(wan_server.prompts) == 3
    assert graphs_by_scene(wan_server)[2][-1]["97"]["inputs"]["image"] == upload_name(Path(first["scenes"][1]["image_path"]))
    assert third["scenes"][0] == first["scenes"][0]

    # a new motion prompt for scene 1: only scene 1 runs again
    third["scenes"][0]["motion_prompt"] = "the barn burns"
    fourth = await amotion_generator(third, s, sleep=sleeps)
    assert len(wan_server.prompts) == 4
    assert graphs_by_scene(wan_server)[1][-1]["93"]["inputs"]["text"] == "the barn burns"
    assert fourth["scenes"][1] == third["scenes"][1]
    root = TopicLayout.for_topic(tmp_path / "out", "wan topic").root
    assert no_parts(root) and sleeps.waits == []
