"""Binary preview frames, as a real ComfyUI sends them while a sampler runs with previews on.

Followed: ComfyUI's ``protocol.py`` ``BinaryEventTypes`` (comfyanonymous/ComfyUI @ 8d28c173:
PREVIEW_IMAGE = 1, UNENCODED_PREVIEW_IMAGE = 2, TEXT = 3, PREVIEW_IMAGE_WITH_METADATA = 4) and
``server.py`` ``encode_bytes`` / ``send_image`` (Comfy-Org/ComfyUI @ 5e14d797): a frame is a
4-byte big-endian event type, then the payload; for PREVIEW_IMAGE the payload is a 4-byte
big-endian image type (1 = JPEG, 2 = PNG) and the encoded image. An UNENCODED_PREVIEW_IMAGE
queued by the sampler's progress hook is encoded and sent as PREVIEW_IMAGE; only a client that
negotiated ``supports_preview_metadata`` gets type 4 instead (sceneforge never asks for it).

The frames themselves are the recorded ones (``samples/extra/10_binary_previews/ws_plain.json``,
ComfyUI 0.33.0 started with ``--preview-method auto``, SD1.5 at 128x128, 3 steps): one JPEG
frame of ~21-23 kB per sampler step, right after that step's ``progress`` text frame, sent only to
the socket of the prompt's ``client_id``.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

__all__ = ["PREVIEW_IMAGE", "preview_frame", "recorded_frames"]

PREVIEW_IMAGE = 1
IMAGE_JPEG, IMAGE_PNG = 1, 2

_RECORDING = Path(__file__).resolve().parents[1] / "data" / "comfyui" / "samples" / "extra" / "10_binary_previews" / "ws_plain.json"
_frames: list[bytes] | None = None


def recorded_frames() -> list[bytes]:
    """The binary frames of the recording, whole, in order (read once per process)."""
    global _frames
    if _frames is None:
        frames = json.loads(_RECORDING.read_text(encoding="utf-8"))
        _frames = [base64.b64decode(f["bytes_b64"]) for f in frames if "bytes_b64" in f]
    return _frames


def preview_frame(step: int) -> bytes:
    """The frame sent after sampler step ``step`` (1-based): the recorded ones in turn."""
    frames = recorded_frames()
    return frames[(step - 1) % len(frames)]


def frame(image: bytes, image_type: int = IMAGE_JPEG) -> bytes:
    """A PREVIEW_IMAGE frame of ``image``, framed as ``send_image`` does."""
    return struct.pack(">I", PREVIEW_IMAGE) + struct.pack(">I", image_type) + image
