"""Bundled ComfyUI workflows in API format (node id -> ``class_type``, ``inputs``, ``_meta.title``).

Text-to-image (``kind="image"``):

* ``sdxl`` - SDXL base 1.0, 768x1344 (9:16-ish), 25 steps dpmpp_2m/karras.
* ``sd15`` - Stable Diffusion 1.5, 512x912 (9:16 with the 512 side SD1.5 was trained on).
* ``z-image-turbo`` - Z-Image Turbo, 720x1280, 9 steps, cfg 1, euler/simple, ModelSamplingAuraFlow shift 3.
* ``flux-kontext`` - FLUX.1 Kontext dev with a reference image (a ``LoadImage`` titled ``reference``) for a
  character kept across scenes: the official template's graph (FluxKontextImageScale, VAEEncode,
  ReferenceLatent, FluxGuidance 2.5, KSampler 20 steps cfg 1 euler/simple) with an EmptySD3LatentImage
  (720x1280) as the latent, as the template's own note suggests for a new picture. Model files:
  ``diffusion_models/flux1-dev-kontext_fp8_scaled.safetensors``, ``text_encoders/clip_l.safetensors``,
  ``text_encoders/t5xxl_fp8_e4m3fn_scaled.safetensors``, ``vae/ae.safetensors`` (about 20 GB of VRAM).

Wan2.2 image-to-video (``kind="motion"``), each saving PNG frames with a SaveImage node besides its video:

* ``wan22-14b-i2v`` - 14B high/low-noise two-stage, 20 steps, 480x832, 81 frames, 16 fps.
* ``wan22-14b-i2v-4step`` - the same with the lightx2v 4-step LoRAs, 4 steps, cfg 1.
* ``wan22-5b-ti2v`` - 5B TI2V, 704x1280, 121 frames, 24 fps.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["BUNDLED_KINDS", "list_bundled", "bundled_path", "bundled_kind", "read_bundled"]

#: Every bundled workflow and what it makes. A test checks this matches the JSON files shipped.
BUNDLED_KINDS: dict[str, str] = {
    "sdxl": "image",
    "sd15": "image",
    "z-image-turbo": "image",
    "flux-kontext": "image",
    "wan22-14b-i2v": "motion",
    "wan22-14b-i2v-4step": "motion",
    "wan22-5b-ti2v": "motion",
}


def _files() -> dict[str, Traversable]:
    root = resources.files(__name__)
    return {f.name[: -len(".json")]: f for f in root.iterdir() if f.name.endswith(".json") and f.is_file()}


def list_bundled(kind: str | None = None) -> list[str]:
    """Names of the bundled workflows, sorted; only those of ``kind`` ("image" or "motion") when given."""
    names = sorted(_files())
    return [n for n in names if kind is None or BUNDLED_KINDS.get(n) == kind]


def _lookup(name: str) -> Traversable:
    files = _files()
    if name not in files:
        raise KeyError(f"no bundled workflow named {name!r}; bundled: {', '.join(sorted(files))}")
    return files[name]


def bundled_path(name: str) -> Path:
    """The file of bundled workflow ``name``. Raises :class:`KeyError` naming the bundled workflows when
    there is none. (The package is installed as plain files, so this is a real path.)"""
    return Path(str(_lookup(name)))


def read_bundled(name: str) -> str:
    """The JSON text of bundled workflow ``name`` (works from any importlib resource, zipped or not)."""
    return _lookup(name).read_text(encoding="utf-8")


def bundled_kind(name: str) -> str | None:
    """"image" or "motion" for a bundled workflow, None for a name that is not bundled."""
    return BUNDLED_KINDS.get(name)
