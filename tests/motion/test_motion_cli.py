"""``sceneforge run --stages image,motion --motion`` end to end against the fake ComfyUI server."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from fakes.comfy_server import FakeComfyServer
from sceneforge.cli import app

runner = CliRunner()

SCENES = {"topic": "cli motion", "scenes": [
    {"script": "one", "image_prompt": "a lighthouse at dusk", "motion_prompt": "waves roll in"},
    {"script": "two", "image_prompt": "a fishing boat"},
]}


def test_run_image_and_motion_with_the_wan_backend(tmp_path: Path):
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps(SCENES), encoding="utf-8")
    out = tmp_path / "out"
    with FakeComfyServer() as srv:  # its own loop in a thread: the CLI runs asyncio.run itself
        srv.accept_any_model = True
        r = runner.invoke(app, ["run", str(f), "--stages", "image,motion", "--motion", "--comfy-url", srv.url,
                                "--motion-length", "9", "--width", "64", "--height", "64", "--out", str(out)],
                          catch_exceptions=False)
        prompts = [p["prompt"] for p in srv.prompts]
    assert r.exit_code == 0, r.output
    root = out / "cli-motion"
    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    for n, scene in enumerate(state["scenes"], 1):
        assert scene["image_path"] == str(root / f"image_scene_{n}.png") and Path(scene["image_path"]).is_file()
        frames = [str(root / f"motion_scene_{n}" / f"frame_{i:04d}.png") for i in range(1, 10)]
        assert scene["motion_frames_path"] == frames
        assert all(Path(p).is_file() for p in frames)
        with Image.open(frames[0]) as im:
            assert im.format == "PNG"
        assert scene["motion_fps"] == 16.0 and isinstance(scene["motion_seed"], int)
        assert scene["motion_video_path"] == str(root / f"motion_scene_{n}.mp4")
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
    wan = [g for g in prompts if any(n["class_type"] == "WanImageToVideo" for n in g.values())]
    assert len(wan) == 2 and {g["98"]["inputs"]["length"] for g in wan} == {9}
    texts = {g["200"]["inputs"]["filename_prefix"]: g["93"]["inputs"]["text"] for g in wan}
    assert texts == {"sceneforge/motion_1": "waves roll in", "sceneforge/motion_2": "a fishing boat"}


def test_bad_motion_length_is_a_clean_usage_error(tmp_path: Path):
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps(SCENES), encoding="utf-8")
    r = runner.invoke(app, ["run", str(f), "--stages", "image,motion", "--motion", "--comfy-url", "http://127.0.0.1:9",
                            "--motion-length", "10", "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert r.exit_code == 2
    assert "motion length 10 is not 4k+1" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
