"""PCM -> MP3 encoding shared by the narration backends and the test fakes.

Every MP3 sceneforge makes itself uses edge-tts's format: 24 kHz, mono, 48 kbps
CBR. Scene files can then be joined by stream copy whichever engine made them
(NOTES: joining only works when sample rate and channels match).
"""

from __future__ import annotations

__all__ = ["OUTPUT_RATE", "OUTPUT_KBPS", "encode_mp3", "tone_pcm"]

#: Sample rate of every MP3 we write (edge-tts's ``audio-24khz-48kbitrate-mono-mp3``).
OUTPUT_RATE = 24_000
#: Constant bit rate of every MP3 we write, in kbit/s.
OUTPUT_KBPS = 48


def encode_mp3(pcm: bytes, in_rate: int, *, out_rate: int = OUTPUT_RATE, kbps: int = OUTPUT_KBPS) -> bytes:
    """Encode signed 16-bit little-endian mono ``pcm`` at ``in_rate`` Hz to MP3.

    LAME resamples when ``in_rate != out_rate`` (espeak's 22050 Hz -> 24000 Hz),
    which is better than a naive interpolation and costs nothing extra.
    """
    import lameenc  # imported late: the edge/openai backends never need it

    enc = lameenc.Encoder()
    enc.set_channels(1)
    enc.set_in_sample_rate(in_rate)
    enc.set_out_sample_rate(out_rate)
    enc.set_bit_rate(kbps)
    enc.set_quality(2)  # 2 = high quality; 10 s of speech still encodes in ~50 ms
    return bytes(enc.encode(pcm) + enc.flush())


def tone_pcm(seconds: float, rate: int = OUTPUT_RATE, *, freq: float = 220.0, amplitude: float = 0.2) -> bytes:
    """A sine tone as 16-bit mono PCM (for fakes and tests: audio with a known length)."""
    import numpy as np

    n = max(1, int(round(seconds * rate)))
    t = np.arange(n, dtype=np.float64) / rate
    wave = amplitude * 32767 * np.sin(2 * np.pi * freq * t)
    return wave.astype("<i2").tobytes()
