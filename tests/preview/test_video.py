"""preview.mp4 from a small real topic, checked with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from preview_helpers import expected_duration

from sceneforge.preview import make_preview


def test_preview_video_and_audio(topic: Path) -> None:
    progress: list[tuple[int, int]] = []
    result = make_preview(topic, on_progress=lambda d, t: progress.append((d, t)))
    assert result.path == topic / "preview.mp4" and result.path.is_file()
    expected = expected_duration(topic)
    assert abs(result.duration - expected) < 1e-6
    assert progress[-1][0] == progress[-1][1] == round(expected * 24)
    assert not list(topic.glob(".*.part"))  # the temporary was renamed, nothing left behind

    with av.open(str(result.path)) as c:
        assert abs(c.duration / 1_000_000 - expected) < 0.2
        v = c.streams.video[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 720, 1280)
        assert v.codec_context.pix_fmt == "yuv420p"
        assert c.streams.audio[0].codec_context.name == "aac"
        # The first frame shows scene 1's red image with a subtitle at the bottom.
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    r, g, b = frame[50, 50].astype(int)
    assert r > 150 and g < 90 and b < 90
    band = frame[int(1280 * 0.70) : int(1280 * 0.82), 100:620]
    assert (band.max(axis=2) > 240).mean() > 0.005  # white subtitle text is drawn there


def test_preview_audio_covers_every_scene(topic: Path) -> None:
    result = make_preview(topic)
    with av.open(str(result.path)) as c:
        samples = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].rate
    pcm = np.concatenate(samples, axis=1)[0]
    # Each scene's tone is present near its middle (scene 3 starts at 2.5 s).
    for t in (0.5, 1.75, 2.9):
        window = pcm[int(t * rate) : int(t * rate) + 1000]
        assert np.abs(window).max() > 0.05, t
