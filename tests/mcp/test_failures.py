"""What an agent is told when generation fails (the fake ComfyUI server fails a job), and the pieces the
tools are made of: thumbnails and frame picking."""

from __future__ import annotations

from pathlib import Path

from mcp_helpers import Client, http_session, start_service
from PIL import Image

from fakes.comfy_server import FakeComfyServer
from sceneforge.config import Settings
from sceneforge.mcp.thumbs import MAX_SIDE, pick_frames, thumbnail


async def test_a_failed_image_is_named_with_its_reason(tmp_path: Path) -> None:
    async with FakeComfyServer(job_time=0.0) as comfy:
        comfy.accept_any_model = True
        comfy.fault("execution_error", node="3", exception_type="torch.OutOfMemoryError",
                    exception_message="CUDA out of memory")
        settings = Settings(out_dir=tmp_path / "out", tts="fake", comfy_urls=(comfy.url,), workflow="sdxl",
                            stages=("audio", "image"), image_retry={"max_attempts": 1})
        svc = await start_service(settings)
        try:
            async with http_session(svc.url) as session:
                client = Client(session)
                slug = (await client.call("create_topic", topic="oom", scenes=[
                    {"script": "One.", "image_prompt": "a cat"}]))["slug"]
                waited = await client.call("wait_topic", slug=slug)
                assert waited["status"] == "failed" and waited["error"]
                scene = (await client.call("get_topic", slug=slug))["scenes"][0]
                assert scene["stages"]["audio"]["state"] == "done"
                assert scene["stages"]["image"]["state"] == "failed"
                failure = scene["failure"]
                assert failure["stage"] == "image" and "CUDA out of memory" in failure["message"]
                assert (failure["kind"], failure["retryable"]) == ("GenerationError", True), failure
                shown = await client.raw("get_scene", {"slug": slug, "n": 1})
                assert not shown.is_error
                assert any(getattr(c, "text", "") == "scene 1 has no image yet" for c in shown.content)
                alone = shown.structured_content or {}  # get_scene says what get_topic says of the scene
                assert alone["stages"]["image"]["state"] == "failed", alone
                assert alone["failure"] == failure
        finally:
            await svc.stop()


def test_thumbnails_are_small_decoded_pictures(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (1080, 1920), (200, 40, 40)).save(big)
    thumb = thumbnail(big)
    assert thumb is not None and thumb.mime_type == "image/jpeg"
    assert (thumb.width, thumb.height) == (432, MAX_SIDE)
    clear = tmp_path / "alpha.png"
    Image.new("RGBA", (64, 32), (0, 0, 0, 0)).save(clear)
    small = thumbnail(clear)
    assert small is not None and (small.mime_type, small.width, small.height) == ("image/png", 64, 32)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<html>not an image</html>")
    assert thumbnail(fake) is None and thumbnail(tmp_path / "missing.png") is None


def test_frames_are_picked_evenly() -> None:
    frames = [Path(f"frame_{i:04d}.png") for i in range(1, 82)]
    assert [p.name for p in pick_frames(frames)] == ["frame_0001.png", "frame_0041.png", "frame_0081.png"]
    assert pick_frames(frames[:2]) == frames[:2]
    assert pick_frames(frames, 1) == [frames[40]]
