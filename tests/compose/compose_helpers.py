"""Real small inputs for the compose tests, and measurements of the output (PyAV decodes, ffmpeg's ebur128).

The measurements are written here, independently of the library's own code,
so a test never checks sceneforge against itself.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import lameenc
import numpy as np
from mutagen.mp3 import MP3
from PIL import Image

FPS = 30
TONE_HZ = 1000.0  # the test narration
MUSIC_HZ = 150.0  # the test music
TONE_S = 0.5  # each narration: a tone, then silence
SILENCE_S = 0.7
# Flat, saturated, dark enough that caption-white and highlight-yellow never occur in them.
COLOURS = [(190, 30, 30), (30, 150, 40), (40, 50, 190)]
MOTION_COLOURS = [(120, 20 + 15 * i, 140) for i in range(8)]  # scene 2's motion frames; it holds the last


def mp3_length(path: Path) -> float:
    return float(MP3(str(path)).info.length)


def write_mp3(path: Path, pcm: np.ndarray, rate: int) -> None:
    enc = lameenc.Encoder()
    enc.set_bit_rate(96)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(7)
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    path.write_bytes(enc.encode(data) + enc.flush())


def tone(seconds: float, rate: int, freq: float, amp: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * math.pi * freq * t)


def narration(path: Path, rate: int) -> None:
    """A 1 kHz tone (the speech), then silence: the music must come back up in the silence."""
    write_mp3(path, np.concatenate([tone(TONE_S, rate, TONE_HZ, 0.3), np.zeros(int(SILENCE_S * rate))]), rate)


def write_music(path: Path, seconds: float = 2.0) -> None:
    """A steady 150 Hz tone: shorter than the video, so it must loop."""
    write_mp3(path, tone(seconds, 44100, MUSIC_HZ, 0.5), 44100)


NARRATION_S = TONE_S + SILENCE_S


def build_topic(root: Path) -> Path:
    """Three scenes: a portrait still, motion frames (shorter than the scene: held), a landscape still
    (blurred fill). Scene 1 has an SRT line over its tone; scene 2 word timings; scene 3 an SRT.

    Like espeak's narration, the MP3s come from a streaming LAME (no header: decoders do not skip its
    1105-sample delay) and ``audio_duration`` records the PCM's exact length, which the scene lasts."""
    root.mkdir(parents=True)
    for n, rate in ((1, 22050), (2, 24000), (3, 22050)):
        narration(root / f"audio_scene_{n}.mp3", rate)
    Image.new("RGB", (360, 640), COLOURS[0]).save(root / "image_scene_1.png")
    Image.new("RGB", (360, 640), COLOURS[1]).save(root / "image_scene_2.png")
    Image.new("RGB", (640, 360), COLOURS[2]).save(root / "image_scene_3.png")
    (root / "motion_scene_2").mkdir()
    for i, c in enumerate(MOTION_COLOURS, 1):
        Image.new("RGB", (360, 640), c).save(root / "motion_scene_2" / f"frame_{i:04d}.png")
    srt = "1\n00:00:00,000 --> 00:00:00,500\n첫 장면입니다\n"
    (root / "audio_scene_1.srt").write_text(srt, encoding="utf-8")
    (root / "audio_scene_3.srt").write_text(srt.replace("첫 장면입니다", "Third scene"), encoding="utf-8")
    scenes = [
        {"script": "첫 장면입니다", "audio_path": "audio_scene_1.mp3", "audio_duration": NARRATION_S, "image_path": "image_scene_1.png",
         "subtitle_path": "audio_scene_1.srt"},
        {"script": "둘째 장면", "audio_path": "audio_scene_2.mp3", "audio_duration": NARRATION_S, "image_path": "image_scene_2.png",
         "motion_frames_path": [f"motion_scene_2/frame_{i:04d}.png" for i in range(1, 9)], "motion_fps": 16},
        {"script": "Third scene", "audio_path": "audio_scene_3.mp3", "audio_duration": NARRATION_S, "image_path": "image_scene_3.png",
         "subtitle_path": "audio_scene_3.srt", "keep": "me"},
    ]
    (root / "scenes.json").write_text(json.dumps({"topic": "테스트 제목", "scenes": scenes}, ensure_ascii=False),
                                      encoding="utf-8")
    return root


def words_sidecar(root: Path, n: int, words: list[tuple[float, float, str]]) -> None:
    """The narration step's word timings for scene ``n`` (the library's writer: its format is the contract)."""
    from sceneforge.tts.base import Cue
    from sceneforge.tts.words import write_words

    write_words(root / f"audio_scene_{n}.mp3", [Cue(*w) for w in words])


def decode_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    """The first channel as float samples, and the rate."""
    chunks, rate = [], 0
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            rate = f.sample_rate
            chunks.append(f.to_ndarray().reshape(len(f.layout.channels), -1)[0] if f.format.is_planar
                          else f.to_ndarray().reshape(-1, len(f.layout.channels))[:, 0])
    return np.concatenate(chunks).astype(np.float64), rate


def stream_facts(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return {"codec": v.codec_context.name, "size": (v.width, v.height), "pix_fmt": v.codec_context.pix_fmt,
                "fps": Fraction(v.average_rate), "frames": v.frames, "audio": a.codec_context.name,
                "rate": a.sample_rate, "duration": float(v.duration * v.time_base),
                "title": c.metadata.get("title")}


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of the file's audio, by ffmpeg's ebur128 filter."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
           "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"]
    log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    summary = log[log.rfind("Summary:"):]
    i = re.search(r"I:\s*(-?[\d.]+) LUFS", summary)
    tp = re.search(r"Peak:\s*(-?[\d.]+) dBFS", summary)
    assert i and tp, summary
    return float(i.group(1)), float(tp.group(1))


def band_db(samples: np.ndarray, rate: int, t0: float, t1: float, freq: float) -> float:
    """Level (dB) of the ``freq`` component between t0 and t1 seconds (a windowed DFT bin)."""
    seg = samples[int(t0 * rate):int(t1 * rate)]
    window = np.hanning(len(seg))
    t = np.arange(len(seg)) / rate
    amp = abs(np.sum(seg * window * np.exp(-2j * math.pi * freq * t))) * 2 / np.sum(window)
    return 20 * math.log10(max(amp, 1e-9))


def caption_pixels(frame: np.ndarray, zone: tuple[int, int, int, int]) -> tuple[int, int]:
    """(white, yellow) pixel counts inside ``zone``: caption text and the highlighted word."""
    x0, y0, x1, y1 = zone
    r, g, b = (frame[y0:y1, x0:x1, k].astype(int) for k in range(3))
    white = int(np.sum((r > 215) & (g > 215) & (b > 215)))
    yellow = int(np.sum((r > 200) & (g > 160) & (b < 90)))
    return white, yellow


def nearest_colour(frame: np.ndarray, colours: list[tuple[int, int, int]]) -> int:
    """Index of the colour nearest to the frame's centre band (between the top and the caption zone)."""
    h, w = frame.shape[:2]
    mean = frame[int(h * 0.35):int(h * 0.5), int(w * 0.3):int(w * 0.7)].reshape(-1, 3).mean(axis=0)
    return int(np.argmin([sum((mean[k] - c[k]) ** 2 for k in range(3)) for c in colours]))
