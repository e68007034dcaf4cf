"""Files the fake ComfyUI server "makes": real PNGs, tiny real videos, and their store.

Output nodes write through :class:`FileStore` with ComfyUI's naming: the prefix
``acc/test`` gives subfolder ``acc`` and files ``test_00001_.png``, the counter
continuing from the highest existing file of that prefix (PROTOCOL §5).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import random
import re
import string
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, PngImagePlugin

from .comfy_validation import is_link

__all__ = ["FileStore", "png_bytes", "render_output", "plan_images", "video_stub"]

_VIDEO_CODECS = {"mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "webm": ["-c:v", "libvpx"],
                 "mkv": ["-c:v", "libx264", "-pix_fmt", "yuv420p"]}


@functools.cache
def video_stub(ext: str) -> bytes:
    """A real two-frame 16x16 video (1-2 KB), made once per process with imageio-ffmpeg's ffmpeg.

    Real, because the client decodes every download before keeping it.
    """
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="fake-comfy-") as tmp:
        out = Path(tmp) / f"stub.{ext}"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", "color=c=red:s=16x16:r=4", "-frames:v", "2", *_VIDEO_CODECS[ext], str(out)],
            check=True, timeout=60,
        )
        return out.read_bytes()


#: ComfyUI's numbered output names: ``<base>_00001_.<ext>``.
_NUMBERED = re.compile(r"(.*)_(\d{5})_\.[^.]*")

_CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "webm": "video/webm", "webp": "image/webp",
                  "mkv": "video/x-matroska", "jpg": "image/jpeg", "jpeg": "image/jpeg", "txt": "text/plain"}


def content_type(name: str) -> str:
    return _CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


class FileStore:
    """``(type, subfolder, filename) -> bytes`` for ``input``, ``output`` and ``temp``."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.input_version = 0  # changes whenever an input file is added (object_info lists them)
        self._counters: dict[tuple[str, str, str], int] = {}  # (type, subfolder, base) -> highest NNNNN used

    def add(self, filename: str, data: bytes, subfolder: str = "", type: str = "output") -> dict[str, str]:
        """Store a file; return its history file ref."""
        self.files[(type, subfolder, filename)] = bytes(data)
        if type == "input":
            self.input_version += 1
        m = _NUMBERED.fullmatch(filename)
        if m:
            key = (type, subfolder, m.group(1))
            self._counters[key] = max(self._counters.get(key, 0), int(m.group(2)))
        return {"filename": filename, "subfolder": subfolder, "type": type}

    def get(self, type: str, subfolder: str, filename: str) -> bytes | None:
        return self.files.get((type, subfolder, filename))

    def exists_input(self, value: str) -> bool:
        """LoadImage's check: ``name``, ``sub/name`` or ``sub/name [output]``."""
        kind = "input"
        m = re.fullmatch(r"(.*) \[(input|output|temp)\]", value)
        if m:
            value, kind = m.group(1), m.group(2)
        sub, _, name = value.rpartition("/")
        return (kind, sub, name) in self.files

    def input_names(self, exts: Iterable[str]) -> list[str]:
        """Top-level input files with one of ``exts`` (what LoadImage's combo lists)."""
        wanted = tuple(f".{e}" for e in exts)
        return sorted(n for (t, s, n) in self.files if t == "input" and s == "" and n.lower().endswith(wanted))

    def save(self, prefix: str, blobs: list[bytes], ext: str, type: str = "output") -> list[dict[str, str]]:
        """Save ``blobs`` under ComfyUI names for ``prefix``; return their refs in order."""
        subfolder, _, base = prefix.replace("\\", "/").rpartition("/")
        counter = self._counters.get((type, subfolder, base), 0) + 1  # kept up to date by add()
        refs = []
        for i, blob in enumerate(blobs):
            refs.append(self.add(f"{base}_{counter + i:05d}_.{ext}", blob, subfolder, type))
        return refs

    def upload(self, name: str, data: bytes, subfolder: str, type: str, overwrite: bool) -> str:
        """ComfyUI's upload naming: identical bytes reuse the name, different ones get `` (1)``."""
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, i = name, 1
        while not overwrite and (type, subfolder, candidate) in self.files:
            if self.files[(type, subfolder, candidate)] == data:
                return candidate
            candidate = f"{stem} ({i}){dot}{ext}"
            i += 1
        self.add(candidate, data, subfolder, type)
        return candidate


def png_bytes(width: int, height: int, rgb: tuple[int, int, int], *, mark: int | None = None,
              text: dict[str, str] | None = None) -> bytes:
    """A real PNG of one colour; ``mark`` draws a small square whose place depends on it (frames differ)."""
    img = Image.new("RGB", (max(1, width), max(1, height)), rgb)
    if mark is not None and width >= 8 and height >= 8:
        side = max(2, min(width, height) // 8)
        x = (mark * side) % max(1, width - side)
        inverse = tuple(255 - c for c in rgb)
        y = height // 2 - side // 2  # away from the corner, so pixel (0, 0) keeps the colour
        ImageDraw.Draw(img).rectangle([x + 1, y, x + side, y + side - 1], fill=inverse)
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()


def _color_for(graph: dict[str, Any]) -> tuple[int, int, int]:
    """From the prompt texts and seeds, so different prompts give different images."""
    parts: list[str] = []
    for nid in sorted(graph):
        node = graph[nid]
        for name, value in sorted((node.get("inputs") or {}).items()):
            if isinstance(value, str) and "TextEncode" in str(node.get("class_type")):
                parts.append(value)
            elif name in ("seed", "noise_seed") and isinstance(value, int):
                parts.append(str(value))
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return digest[0], digest[1], digest[2]


def plan_images(graph: dict[str, Any], nid: str, store: FileStore) -> tuple[int, int, int, tuple[int, int, int]]:
    """``(width, height, count, rgb)`` for an image output node, read from the nodes upstream."""
    width = height = count = None
    rgb: tuple[int, int, int] | None = None
    queue, seen = [nid], set()
    while queue:
        cur = queue.pop(0)
        if cur in seen or cur not in graph:
            continue
        seen.add(cur)
        node = graph[cur]
        inputs = node.get("inputs") or {}
        if width is None and isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int):
            width, height = inputs["width"], inputs["height"]
        if count is None:
            if isinstance(inputs.get("length"), int):
                count = inputs["length"]
            elif isinstance(inputs.get("batch_size"), int):
                count = inputs["batch_size"]
        if rgb is None and node.get("class_type") == "EmptyImage" and isinstance(inputs.get("color"), int):
            c = inputs["color"]
            rgb = ((c >> 16) & 255, (c >> 8) & 255, c & 255)
        if width is None and node.get("class_type") == "LoadImage":
            data = store.get("input", *_split(str(inputs.get("image", ""))))
            if data:
                try:
                    width, height = Image.open(io.BytesIO(data)).size
                except OSError:
                    pass
        queue.extend(v[0] for v in inputs.values() if is_link(v))
    return width or 64, height or 64, max(1, count or 1), rgb or _color_for(graph)


def _split(value: str) -> tuple[str, str]:
    sub, _, name = value.rpartition("/")
    return sub, name


def _animated(ext: str, frames: list[Image.Image], fps: float) -> bytes:
    buf = io.BytesIO()
    fmt = "WEBP" if ext == "webp" else "PNG"
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=int(1000 / max(fps, 0.01)), loop=0)
    return buf.getvalue()


def render_output(graph: dict[str, Any], nid: str, store: FileStore) -> dict[str, Any]:
    """Run output node ``nid`` for real: write its files, return its ui dict ({} for none)."""
    node = graph[nid]
    cls = node.get("class_type")
    inputs = node.get("inputs") or {}
    prefix = str(inputs.get("filename_prefix") or "ComfyUI")
    width, height, count, rgb = plan_images(graph, nid, store)
    if cls in ("SaveImage", "PreviewImage"):
        meta = {"prompt": json.dumps(graph)}
        blobs = [png_bytes(width, height, rgb, mark=i if count > 1 else None, text=meta) for i in range(count)]
        if cls == "PreviewImage":
            rand = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
            return {"images": store.save(f"ComfyUI_temp_{rand}", blobs, "png", "temp")}
        return {"images": store.save(prefix, blobs, "png")}
    if cls in ("SaveVideo", "SaveWEBM"):
        fmt = str(inputs.get("format") or "mp4")
        ext = "webm" if cls == "SaveWEBM" or fmt == "webm" else ("mkv" if fmt == "mkv" else "mp4")
        return {"images": store.save(prefix, [video_stub(ext)], ext), "animated": [True]}
    if cls in ("SaveAnimatedWEBP", "SaveAnimatedPNG"):
        ext = "webp" if cls == "SaveAnimatedWEBP" else "png"
        frames = [Image.new("RGB", (min(width, 64), min(height, 64)), rgb) for _ in range(min(count, 4))]
        data = _animated(ext, frames, float(inputs.get("fps") or 6.0))
        return {"images": store.save(prefix, [data], ext), "animated": [True]}
    if cls == "PreviewAny":
        return {"text": [str(inputs.get("source"))]}
    return {}
