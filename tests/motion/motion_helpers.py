"""Helpers of the motion tests: scene images, real small videos, a video-only fake server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

from fakes.comfy_server import FakeComfyServer


def make_image(path: Path, rgb: tuple[int, int, int] = (40, 90, 160), size: tuple[int, int] = (64, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


def make_video(path: Path, *, frames: int = 9, fps: int = 8, size: str = "64x64", codec: str = "libx264") -> Path:
    """A real small video made with the imageio-ffmpeg ffmpeg (test pattern)."""
    import imageio_ffmpeg

    pix = ["-pix_fmt", "yuv420p"] if codec == "libx264" else []
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}", "-frames:v", str(frames), *pix,
         "-c:v", codec, str(path)],
        check=True, timeout=60,
    )
    return path


def video_only(srv: FakeComfyServer, data: bytes, ext: str = "mp4"):
    """``srv.outputs_for`` making a Wan graph's SaveVideo the only output: its SaveImage produces nothing."""

    def outputs(graph: dict) -> dict:
        out: dict = {}
        for nid, node in graph.items():
            if node["class_type"] == "SaveImage":
                out[nid] = {}
            elif node["class_type"] in ("SaveVideo", "SaveWEBM"):
                prefix = node["inputs"]["filename_prefix"]
                out[nid] = {"images": srv.save_outputs(prefix, [data], ext), "animated": [True]}
        return out

    return outputs
