"""Crash-safe resume: a real ``sceneforge run`` killed with SIGKILL at random moments, resumed each time.

The run makes narration (espeak, in spawned worker processes), images and 5-frame motion clips
(the fake ComfyUI server, in a thread of this process, so it outlives every killed run and its
job log covers them all) for 6 scenes. One full run is timed first; each kill then comes after a
delay drawn (seeded) from the whole span of such a run, so kills land in start-up, narration,
queued and running jobs, downloads, frame-folder renames and state writes alike.

A *chain* is one topic: killed and resumed until a run gets to finish. A kill spread over a
whole run's length leaves a resumed run less to do each time, so a chain ends after a few
kills; chains repeat (a new topic each) until at least ``MIN_KILLS`` kills hit a live run.
Then every topic is run once more, to completion, and:

* every asset is complete and decodes (MP3 via mutagen, PNG via Pillow ``verify``/``load``,
  each motion folder exactly 5 frames), and ``scenes.json`` is valid and lists them all;
* no temporary (``.*.part``) file or folder is left anywhere under the output;
* **no finished job ran twice**: per (topic, stage, scene) the server ran exactly one job to
  success, i.e. a killed run's job was re-attached through the journal, never resubmitted;
  and the last, undisturbed runs submitted nothing at all;
* no process of a killed run survived it (the whole process group is killed).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mutagen.mp3 import MP3
from PIL import Image

from fakes.comfy_server import FakeComfyServer

pytestmark = pytest.mark.timeout(150)

SCENES = 6
FRAMES = 5
MIN_KILLS = 10
SEED = 20250611
MAX_RUNS_PER_CHAIN = 40


def job_time(graph: dict) -> float:
    """GPU time of the fake server: 0.05 s per image, 0.1 s per motion clip."""
    return 0.1 if any(n.get("class_type") == "WanImageToVideo" for n in graph.values()) else 0.05


def scene_file(tmp: Path, chain: str) -> Path:
    f = tmp / f"{chain}.json"
    scenes = [
        {"script": f"Scene number {n}. A short line of narration for the kill test.",
         "image_prompt": f"a lighthouse at dusk, chain {chain}, scene {n}"}
        for n in range(1, SCENES + 1)
    ]
    f.write_text(json.dumps({"topic": chain, "scenes": scenes}), encoding="utf-8")
    return f


def start(f: Path, out: Path, url: str, logs: Path, tag: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sceneforge.cli", "run", str(f), "--out", str(out), "--comfy-url", url,
           "--motion", "--motion-length", str(FRAMES), "--tts", "espeak", "--workflow", "sdxl",
           "--events", str(logs / f"{tag}.events")]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=open(logs / f"{tag}.out", "wb"), stderr=open(logs / f"{tag}.err", "wb"),
        start_new_session=True,  # its own process group: the espeak workers die with it
    )


def group_alive(pgid: int) -> list[int]:
    """Processes (not zombies) still in process group ``pgid``."""
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(d.name))
    return alive


def kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(10)
    deadline = time.monotonic() + 5
    while group_alive(p.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not group_alive(p.pid), f"processes of a killed run survived: {group_alive(p.pid)}"


def moment(events: Path) -> str:
    """Where a killed run was: its last event (or 'start-up' before the first)."""
    lines = events.read_text(encoding="utf-8").splitlines() if events.exists() else []
    for line in reversed(lines):
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        return " ".join(str(ev[k]) for k in ("kind", "stage") if k in ev)
    return "start-up"


def job_key(job: dict) -> tuple[str, str, int]:
    """(chain, stage, scene) of a server job, read from its graph."""
    graph = job["graph"]
    blob = json.dumps(graph)
    chain = re.search(r"chain (k\d+)", blob).group(1)
    prefix = next(n["inputs"]["filename_prefix"] for n in graph.values()
                  if n.get("class_type") == "SaveImage")
    m = re.fullmatch(r"sceneforge/(scene|motion)_(\d+)", prefix)
    return chain, "image" if m.group(1) == "scene" else "motion", int(m.group(2))


def check_topic(root: Path) -> None:
    state = json.loads((root / "scenes.json").read_text(encoding="utf-8"))
    assert len(state["scenes"]) == SCENES
    for n, sc in enumerate(state["scenes"], 1):
        audio = Path(sc["audio_path"])
        assert audio == root / f"audio_scene_{n}.mp3"
        length = MP3(audio).info.length
        assert length > 0 and abs(length - sc["audio_duration"]) < 0.2, (audio, length, sc["audio_duration"])
        assert Path(sc["subtitle_path"]).read_text(encoding="utf-8").startswith("1\n")
        image = Path(sc["image_path"])
        assert image == root / f"image_scene_{n}.png"
        with Image.open(image) as im:
            assert im.format == "PNG"
            im.verify()
        with Image.open(image) as im:
            im.load()
        frames = [Path(p) for p in sc["motion_frames_path"]]
        folder = root / f"motion_scene_{n}"
        assert frames == [folder / f"frame_{i:04d}.png" for i in range(1, FRAMES + 1)]
        assert sorted(p.name for p in folder.iterdir()) == [f.name for f in frames]  # exactly 5, nothing else
        for fr in frames:
            with Image.open(fr) as im:
                im.verify()
            with Image.open(fr) as im:
                im.load()
                assert im.size[0] > 0
        assert Path(sc["motion_video_path"]).stat().st_size > 0  # the fake's video is a stub: present only
        assert isinstance(sc["image_seed"], int) and isinstance(sc["motion_seed"], int)
    temps = [p for p in root.rglob("*") if p.name.endswith(".part") or ".part" in p.name]
    assert temps == [], temps
    # Every journaled job was collected. An entry may only outlive its job when the kill fell between
    # the cache record and the journal clear (harmless: that scene is cached and never asks again).
    for entry in (root / ".sceneforge" / "jobs").glob("*"):
        stage, _, scene = entry.stem.partition("_")
        assert (root / ".sceneforge" / stage / f"{scene}.json").is_file(), entry


def test_sigkill_at_random_moments_then_resume(tmp_path: Path):
    rng = random.Random(SEED)
    out, logs = tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    with FakeComfyServer(job_time=job_time) as srv:
        srv.accept_any_model = True

        # Calibrate: one undisturbed run, and how long its start-up (imports, lock) takes.
        t0 = time.monotonic()
        p = start(scene_file(tmp_path, "k0"), out, srv.url, logs, "calibrate")
        assert p.wait(60) == 0, (logs / "calibrate.err").read_text()
        full = time.monotonic() - t0
        check_topic(out / "k0")

        kills: list[tuple[str, float, str]] = []
        chains: list[str] = []
        runs = 0
        while len(kills) < MIN_KILLS:
            chain = f"k{len(chains) + 1}"
            chains.append(chain)
            f = scene_file(tmp_path, chain)
            for attempt in range(MAX_RUNS_PER_CHAIN):
                tag = f"{chain}-{attempt}"
                delay = rng.uniform(0.0, full)
                p = start(f, out, srv.url, logs, tag)
                runs += 1
                try:
                    rc = p.wait(delay)
                except subprocess.TimeoutExpired:
                    kill_group(p)
                    kills.append((tag, round(delay, 2), moment(logs / f"{tag}.events")))
                    continue
                assert rc == 0, (logs / f"{tag}.err").read_text()
                break
            else:
                pytest.fail(f"chain {chain} never finished in {MAX_RUNS_PER_CHAIN} runs")

        # Every topic once more, undisturbed: done, and nothing submitted again.
        before = len(srv.jobs)
        for chain in ["k0", *chains]:
            p = start(scene_file(tmp_path, chain), out, srv.url, logs, f"{chain}-final")
            assert p.wait(60) == 0, (logs / f"{chain}-final.err").read_text()
        assert len(srv.jobs) == before, "a finished topic submitted jobs again"

        # Jobs a killed run queued may still be running: let the server drain before reading its log.
        deadline = time.monotonic() + 10
        while srv.runner.remaining() and time.monotonic() < deadline:
            time.sleep(0.05)
        jobs = list(srv.jobs)
        connects = Counter(c["client_id"] for c in srv.ws_connects)

    for chain in ["k0", *chains]:
        check_topic(out / chain)

    successes = Counter(job_key(j) for j in jobs if j["status"] == "success")
    twice = {k: c for k, c in successes.items() if c > 1}
    assert not twice, f"finished jobs were run again: {twice}"
    expected = {(c, s, n) for c in ["k0", *chains] for s in ("image", "motion") for n in range(1, SCENES + 1)}
    assert set(successes) == expected
    statuses = Counter(j["status"] for j in jobs)
    # A job whose clientId connected again was re-attached by a later run (no websocket faults here).
    resumed = sum(connects[j["client_id"]] > 1 for j in jobs)

    where = Counter(m for _, _, m in kills)
    report = (f"full run {full:.2f} s; {len(kills)} kills over {len(chains)} chains ({runs} runs); "
              f"server jobs {dict(statuses)}, {resumed} re-attached by a later run; kill moments {dict(where)}")
    print(report)
    assert len(kills) >= MIN_KILLS
    # The kills must not all land before any work started.
    assert sum(m != "start-up" for _, _, m in kills) >= 3, report
    assert resumed >= 1, report  # the kills did catch jobs in flight, and they were resumed
