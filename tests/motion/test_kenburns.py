"""The kenburns offline motion backend."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sceneforge.backend import BackendResources
from sceneforge.errors import AssetMissingError
from sceneforge.motion import motion_registry
from sceneforge.motion.base import MotionRequest
from sceneforge.motion.kenburns import KenBurnsBackend, KenBurnsOptions, encode_png, plan_path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A small textured 9:16 image (texture makes any movement visible in the pixels)."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 255, (32, 18, 3), dtype=np.uint8)
    path = tmp_path / "image_scene_1.png"
    Image.fromarray(small).resize((180, 320), Image.Resampling.BICUBIC).save(path)
    return path


def _frames(paths: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in paths]


def test_registered_and_built_from_settings() -> None:
    cls = motion_registry.get("kenburns")
    assert cls is KenBurnsBackend
    b = cls.from_settings(SimpleNamespace(motion_length=None, motion_fps=None, kenburns_zoom=1.15, motion_seed=None), BackendResources.none())
    assert (b.options.frames, b.options.fps, b.options.zoom, b.options.seed) == (49, 16.0, 1.15, None)
    b = cls.from_settings(SimpleNamespace(motion_length=9, motion_fps=24.0, kenburns_zoom=1.3, motion_seed=5), BackendResources.none())
    assert (b.options.frames, b.options.fps, b.options.zoom, b.options.seed) == (9, 24.0, 1.3, 5)


def test_fingerprint() -> None:
    fp = KenBurnsBackend(KenBurnsOptions(frames=9)).fingerprint()
    assert fp["backend"] == "kenburns" and fp["frames"] == 9 and fp["seed"] == "from-image"
    assert {"fps", "zoom", "version"} <= fp.keys()
    assert KenBurnsBackend(KenBurnsOptions(seed=3)).fingerprint()["seed"] == 3


async def test_frames_names_size_and_fps(image: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = await KenBurnsBackend(KenBurnsOptions(frames=12, fps=8, seed=1)).generate(MotionRequest(1, image, "p", work))
    assert [p.name for p in result.frames] == [f"frame_{i:04d}.png" for i in range(1, 13)]
    assert sorted(p.name for p in work.iterdir()) == [p.name for p in result.frames]  # no temporaries
    assert result.fps == 8 and result.fields == {"motion_seed": 1}
    frames = _frames(result.frames)
    assert all(f.shape == (320, 180, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])  # it moves


async def test_deterministic_for_a_seed(image: Path, tmp_path: Path) -> None:
    opts = KenBurnsOptions(frames=6, seed=42)
    a = await KenBurnsBackend(opts).generate(MotionRequest(1, image, "", tmp_path / "a"))
    b = await KenBurnsBackend(opts).generate(MotionRequest(1, image, "", tmp_path / "b"))
    assert [p.read_bytes() for p in a.frames] == [p.read_bytes() for p in b.frames]


async def test_different_seed_different_frames(image: Path, tmp_path: Path) -> None:
    a = await KenBurnsBackend(KenBurnsOptions(frames=6, seed=1)).generate(MotionRequest(1, image, "", tmp_path / "a"))
    b = await KenBurnsBackend(KenBurnsOptions(frames=6, seed=2)).generate(MotionRequest(1, image, "", tmp_path / "b"))
    assert any(not np.array_equal(x, y) for x, y in zip(_frames(a.frames), _frames(b.frames)))


async def test_seed_derived_from_image_bytes(image: Path, tmp_path: Path) -> None:
    backend = KenBurnsBackend(KenBurnsOptions(frames=3))
    a = await backend.generate(MotionRequest(1, image, "", tmp_path / "a"))
    b = await backend.generate(MotionRequest(1, image, "", tmp_path / "b"))
    assert a.fields["motion_seed"] == b.fields["motion_seed"]
    assert [p.read_bytes() for p in a.frames] == [p.read_bytes() for p in b.frames]
    other = tmp_path / "other.png"
    Image.open(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    c = await backend.generate(MotionRequest(1, other, "", tmp_path / "c"))
    assert c.fields["motion_seed"] != a.fields["motion_seed"]


@pytest.mark.parametrize("seed", range(20))
def test_crop_stays_inside_the_image(seed: int) -> None:
    path = plan_path(seed, 1.4)
    for t in np.linspace(0, 1, 11):
        x0, y0, x1, y1 = path.box(float(t), 720, 1280)
        assert -1e-6 <= x0 and -1e-6 <= y0 and x1 <= 720 + 1e-6 and y1 <= 1280 + 1e-6
        assert abs((x1 - x0) / (y1 - y0) - 720 / 1280) < 1e-9  # aspect kept: no distortion


def test_both_directions_occur() -> None:
    zoom_in = {plan_path(s, 1.15).zoom_start == 1.0 for s in range(40)}
    assert zoom_in == {True, False}


def test_encode_png_is_lossless() -> None:
    rng = np.random.default_rng(0)
    for mode_shape in [(37, 23, 3), (1, 1, 3)]:
        arr = rng.integers(0, 256, mode_shape, dtype=np.uint8)
        img = Image.fromarray(arr)
        decoded = Image.open(io.BytesIO(encode_png(img)))
        assert decoded.format == "PNG" and decoded.mode == "RGB"
        assert np.array_equal(np.asarray(decoded), arr)


async def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(AssetMissingError, match="scene 4"):
        await KenBurnsBackend().generate(MotionRequest(4, tmp_path / "nope.png", "", tmp_path / "w"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(AssetMissingError, match="scene 5: image .*broken.png is not a readable image"):
        await KenBurnsBackend().generate(MotionRequest(5, broken, "", tmp_path / "w"))
