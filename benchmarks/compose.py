"""Final-cut benchmark: ``sceneforge compose`` against the same composition written with MoviePy 2.

The bundled Korean example (examples/ai-shorts.ko.json) is generated offline
into a temporary folder (espeak narration, storyboard images), a 30 s music
file is made with ffmpeg, and the same video is composed twice, side by side in
this one run, each in a subprocess of its own:

* ``sceneforge``: ``python -m sceneforge compose TOPIC --size 1080x1920 --music M``
  (crossfades, Ken Burns stills, word/line captions, ducked music, -14 LUFS).
* ``moviepy``: the composition MoneyPrinterTurbo writes with MoviePy 2
  (app/services/video.py: ``ImageClip.resized(lambda t: zoom)`` in a
  ``CompositeVideoClip``, clips joined with crossfades, one ``TextClip`` per
  SRT line composited over the video, narration plus ``MultiplyVolume`` /
  ``AudioLoop`` / ``AudioFadeOut`` music in a ``CompositeAudioClip``,
  ``write_videofile(fps=30, codec="libx264", audio_codec="aac", audio_bitrate="192k", threads=2)``).
  Made fairer to MoviePy than MoneyPrinterTurbo itself: one ``write_videofile``
  (MoneyPrinterTurbo first renders every image to an MP4 of its own, then joins
  them, then composes), and the same x264 preset and CRF as sceneforge. It does
  no ducking and no loudness normalisation (MoviePy has neither).

Wall time is measured around each subprocess; peak RSS is the largest sum of
the resident memory of the subprocess and all its descendants (ffmpeg),
sampled from /proc every 20 ms. Needs ``pip install -e '.[bench]'`` (MoviePy).
Progress goes to stderr; stdout is one JSON object.

    python benchmarks/compose.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ai-shorts.ko.json"
SIZE = (1080, 1920)
FPS = 30
PAD = 0.25
CROSSFADE = 0.3


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ measuring a process tree


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(root: int) -> int:
    kids, total, stack = _children_map(), 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kb(pid)
        stack.extend(kids.get(pid, []))
    return total


def measure(cmd: list[str], name: str) -> dict[str, Any]:
    """Run ``cmd``; its wall time and the peak RSS of its whole process tree."""
    log(f"{name}: {' '.join(cmd[:4])} ...")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{err[-2000:]}")
    log(f"{name}: {wall:.1f} s, peak RSS {peak / 1024:.0f} MB")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1024, 1)}


# ------------------------------------------------------------------ the inputs


def make_inputs(tmp: Path) -> tuple[Path, Path]:
    """The example generated offline, and a 30 s music file; returns (topic folder, music)."""
    from sceneforge.layout import slugify

    out = tmp / "out"
    subprocess.run([sys.executable, "-m", "sceneforge", "run", str(EXAMPLE), "--offline", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    topic = out / slugify(json.loads(EXAMPLE.read_text(encoding="utf-8"))["topic"])
    import imageio_ffmpeg

    music = tmp / "music.mp3"
    chord = ";".join(f"sine=f={f}:d=30[s{i}]" for i, f in enumerate((220, 277.2, 329.6)))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-filter_complex",
                    f"{chord};[s0][s1][s2]amix=inputs=3,volume=0.6,tremolo=f=2:d=0.4",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(music)], check=True)
    return topic, music


# ------------------------------------------------------------------ the MoviePy composition


def _moviepy_scene(image: str, duration: float) -> Any:
    """One still with MoneyPrinterTurbo's zoom (resized by a function of t), cover-fitted, centred."""
    from moviepy import CompositeVideoClip, ImageClip

    clip = ImageClip(image).with_duration(duration)
    scale = max(SIZE[0] / clip.w, SIZE[1] / clip.h)
    clip = clip.resized(scale)
    zoom = clip.resized(lambda t: 1 + 0.08 * t / duration).with_position("center")
    return CompositeVideoClip([zoom], size=SIZE).with_duration(duration)


def _moviepy_captions(srt: Path, offset: float, font: str) -> list[Any]:
    from moviepy import TextClip

    from sceneforge.preview.subtitles import parse_srt

    clips = []
    for start, end, text in parse_srt(srt.read_text(encoding="utf-8")):
        clip = TextClip(font=font, text=text, font_size=80, color="white", stroke_color="black", stroke_width=4,
                        method="caption", size=(int(SIZE[0] * 0.76), None), text_align="center")
        clips.append(clip.with_start(offset + start).with_duration(end - start)
                     .with_position(("center", SIZE[1] * 0.73 - clip.h)))
    return clips


def render_moviepy(topic: Path, music: Path, dest: Path) -> None:
    """The composition in MoviePy 2 (run in its own process by ``--moviepy``)."""
    from moviepy import AudioFileClip, CompositeAudioClip, CompositeVideoClip, afx, concatenate_videoclips, vfx

    from sceneforge.preview.fonts import cjk_font_path

    scenes = json.loads((topic / "scenes.json").read_text(encoding="utf-8"))["scenes"]
    slots = [float(s["audio_duration"]) + PAD for s in scenes]
    starts = [sum(slots[:i]) for i in range(len(slots))]
    clips = []
    for i, (scene, slot) in enumerate(zip(scenes, slots)):
        last = i == len(scenes) - 1
        clip = _moviepy_scene(scene["image_path"], slot if last else slot + CROSSFADE)
        clips.append(clip if i == 0 else clip.with_effects([vfx.CrossFadeIn(CROSSFADE)]))
    video = concatenate_videoclips(clips, method="compose", padding=-CROSSFADE)
    captions = [c for s, t in zip(scenes, starts) for c in _moviepy_captions(Path(s["subtitle_path"]), t,
                                                                               str(cjk_font_path()))]
    video = CompositeVideoClip([video, *captions], size=SIZE)
    voices = [AudioFileClip(s["audio_path"]).with_start(t) for s, t in zip(scenes, starts)]
    bgm = AudioFileClip(str(music)).with_effects(
        [afx.MultiplyVolume(0.2), afx.AudioFadeOut(3), afx.AudioLoop(duration=video.duration)])
    video = video.with_audio(CompositeAudioClip([*voices, bgm]).with_duration(video.duration))
    video.write_videofile(str(dest), fps=FPS, codec="libx264", audio_codec="aac", audio_bitrate="192k",
                          preset="veryfast", threads=2, ffmpeg_params=["-crf", "21", "-pix_fmt", "yuv420p"],
                          logger=None)


def _facts(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return {"size": f"{v.width}x{v.height}", "frames": v.frames, "duration_s": round(float(c.duration) / 1e6, 3)}


def main() -> None:
    if sys.argv[1:2] == ["--moviepy"]:
        render_moviepy(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    from importlib.metadata import version

    import moviepy  # noqa: F401 - fail early when the bench extra is missing

    with tempfile.TemporaryDirectory(prefix="sceneforge-bench-compose-") as tmpdir:
        tmp = Path(tmpdir)
        topic, music = make_inputs(tmp)
        sf = measure([sys.executable, "-m", "sceneforge", "compose", str(topic), "--size", f"{SIZE[0]}x{SIZE[1]}",
                      "--music", str(music)], "sceneforge")
        sf["output"] = _facts(topic / "final.mp4")
        mp_out = tmp / "moviepy.mp4"
        mp = measure([sys.executable, str(Path(__file__).resolve()), "--moviepy", str(topic), str(music),
                      str(mp_out)], "moviepy")
        mp["output"] = _facts(mp_out)
        scenes = len(json.loads((topic / "scenes.json").read_text(encoding="utf-8"))["scenes"])
    print(json.dumps({
        "example": EXAMPLE.name, "scenes": scenes, "size": f"{SIZE[0]}x{SIZE[1]}", "fps": FPS,
        "cpus": len(os.sched_getaffinity(0)), "load_before": round(os.getloadavg()[0], 2),
        "moviepy_version": version("moviepy"),
        "sceneforge": sf, "moviepy": mp,
        "time_ratio": round(sf["wall_s"] / mp["wall_s"], 3),
        "rss_ratio": round(sf["peak_rss_mb"] / mp["peak_rss_mb"], 3),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
