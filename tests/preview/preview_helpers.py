"""Small real assets for the preview tests: MP3 tones and PNG images."""

from __future__ import annotations

import math
from pathlib import Path

import lameenc
import numpy as np
from mutagen.mp3 import MP3
from PIL import Image


def mp3_duration(path: Path) -> float:
    """The MP3's length as mutagen reads it (the preview's fallback when audio_duration is unset)."""
    return float(MP3(str(path)).info.length)


def write_mp3(path: Path, seconds: float, rate: int, freq: float = 440.0) -> None:
    """A mono sine tone of ``seconds`` at ``rate`` Hz, LAME-encoded."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * math.pi * freq * t) * 8000).astype("<i2").tobytes()
    enc = lameenc.Encoder()
    enc.set_bit_rate(64)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(7)
    path.write_bytes(enc.encode(pcm) + enc.flush())


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (720, 1280)) -> None:
    """A ``colour`` image with a white square in its upper-left quarter."""
    img = Image.new("RGB", size, colour)
    img.paste((255, 255, 255), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    img.save(path)


def expected_duration(root: Path) -> float:
    """The sum of the three fixture narrations' lengths."""
    return sum(mp3_duration(root / f"audio_scene_{n}.mp3") for n in (1, 2, 3))
