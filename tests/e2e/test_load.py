"""Load: a 200-scene run completes, and the run's memory does not grow with the number of scenes.

Each run is a real ``sceneforge run`` process; at exit it reports its own peak resident set
(``VmHWM`` from ``/proc/self/status``: the main process, where scenes, events, cache records and
job state live; the espeak workers are a fixed pool). 50 and 200 scenes are compared, for two
workloads: the offline backends (espeak narration + storyboard cards), and espeak narration +
images from the fake ComfyUI server (``job_time`` 0, so the client, journal, cache and downloads
are what is measured). The figures are printed (``-s``) and recorded in docs/faults.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mutagen.mp3 import MP3
from PIL import Image

from fakes.comfy_server import FakeComfyServer

pytestmark = pytest.mark.timeout(180)

#: Runs the CLI and reports its peak RSS and wall time on stderr. The __main__ guard matters:
#: espeak's spawned workers import the main module.
WRAPPER = '''
import atexit, sys, time
if __name__ == "__main__":
    t0 = time.monotonic()
    def report():
        hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
        sys.stderr.write(f"\\nLOAD peak_rss_kb={hwm} wall_s={time.monotonic() - t0:.2f}\\n")
    atexit.register(report)
    sys.argv = ["sceneforge", *sys.argv[1:]]
    from sceneforge.cli import main
    main()
'''

MAX_GROWTH = 1.5  # 200-scene peak / 50-scene peak


def scene_file(tmp: Path, n: int) -> Path:
    f = tmp / f"load{n}.json"
    f.write_text(json.dumps({"topic": f"load {n}", "scenes": [
        {"script": f"Scene {i}. A short line of narration for the load test.", "image_prompt": f"a city street, scene {i}"}
        for i in range(1, n + 1)]}), encoding="utf-8")
    return f


def measure(tmp: Path, n: int, out: Path, *args: str) -> tuple[int, float]:
    wrapper = tmp / "measure.py"
    wrapper.write_text(WRAPPER)
    p = subprocess.run([sys.executable, str(wrapper), "run", str(scene_file(tmp, n)), "--out", str(out), *args],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=150, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    m = re.search(r"LOAD peak_rss_kb=(\d+) wall_s=([\d.]+)", p.stderr)
    assert m, p.stderr[-2000:]
    root = out / f"load-{n}"
    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    assert len(state["scenes"]) == n
    for i, sc in enumerate(state["scenes"], 1):
        assert Path(sc["audio_path"]).stat().st_size > 0 and Path(sc["image_path"]).stat().st_size > 0, i
    for sc in (state["scenes"][0], state["scenes"][-1]):
        assert MP3(sc["audio_path"]).info.length > 0
        with Image.open(sc["image_path"]) as im:
            im.verify()
    assert not [q for q in root.rglob("*") if ".part" in q.name]
    return int(m.group(1)), float(m.group(2))


def report(label: str, small: tuple[int, float], big: tuple[int, float]) -> None:
    print(f"\n{label}: 50 scenes {small[1]:.1f} s, peak RSS {small[0] / 1024:.1f} MiB; "
          f"200 scenes {big[1]:.1f} s, peak RSS {big[0] / 1024:.1f} MiB ({big[0] / small[0]:.2f}x)")
    assert big[0] <= MAX_GROWTH * small[0], f"{label}: memory grows with the scenes"


def test_offline_200_scenes_complete_and_memory_stays_flat(tmp_path: Path):
    args = ("--offline", "--stages", "audio,image")
    small = measure(tmp_path, 50, tmp_path / "out", *args)
    big = measure(tmp_path, 200, tmp_path / "out", *args)
    report("offline (espeak + storyboard)", small, big)


def test_comfyui_200_scenes_complete_and_memory_stays_flat(tmp_path: Path):
    with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        args = ("--stages", "audio,image", "--tts", "espeak", "--comfy-url", srv.url, "--workflow", "sdxl",
                "--width", "64", "--height", "64")
        small = measure(tmp_path, 50, tmp_path / "out", *args)
        big = measure(tmp_path, 200, tmp_path / "out", *args)
        assert sum(j["status"] == "success" for j in srv.jobs) == 250
    report("espeak + ComfyUI images (fake server)", small, big)
