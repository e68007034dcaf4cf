"""Pipeline benchmark: overlap, the server pool, client overhead, cached re-runs, memory.

Runs against fake ComfyUI servers that simulate one GPU each (one job at a time,
a fixed job time per image and per motion clip) and a fake narration engine with
latency, all on 127.0.0.1. Each fake server runs in a process of its own, as a
real server would, so its work does not take this process's time (or its GIL).
Every figure is measured side by side in this one run. Progress goes to stderr;
the last line on stdout is one JSON object.

    python benchmarks/pipeline.py            # the full run (about a minute)
    python benchmarks/pipeline.py --quick    # job times divided by 4
    python benchmarks/pipeline.py --old-ref dea09c4   # the same run on older code, side by side

It ends with the serverless endpoint figures of ``benchmarks/elastic.py`` (issue #19) under ``elastic``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake servers live with the tests
sys.path.insert(0, str(ROOT / "benchmarks"))

from comfy_client import measure as measure_client  # noqa: E402

from fakes.comfy_server import FakeComfyServer  # noqa: E402
from sceneforge.config import Settings  # noqa: E402
from sceneforge.events import Event  # noqa: E402
from sceneforge.fsutil import atomic_path  # noqa: E402
from sceneforge.pipeline import agenerate_assets  # noqa: E402
from sceneforge.tts.base import SpeechResult, TTSBackend, tts_registry  # noqa: E402
from sceneforge.tts.mp3 import encode_mp3, tone_pcm  # noqa: E402

MOTION_LENGTH = 5  # frames per clip from the fake: the GPU time is simulated, not the frame count


@tts_registry.register("bench")
class LatencyTTS(TTSBackend):
    """A narration engine that takes ``latency`` seconds per scene (like a remote TTS)."""

    latency = 0.3
    max_concurrency = 4
    default_concurrency = 4  # the name before the engine redesign (for --old-ref)
    _mp3 = b""

    async def synthesize(self, request: Any, report: Any = None) -> SpeechResult:
        # (text, dest) before the engine redesign, so --old-ref can measure that code too.
        dest = report if isinstance(request, str) else request.dest
        await asyncio.sleep(self.latency)
        if not LatencyTTS._mp3:
            LatencyTTS._mp3 = encode_mp3(tone_pcm(1.0), 24_000)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(LatencyTTS._mp3)
        return SpeechResult(duration=1.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scenes(n: int, tag: str = "") -> list[dict[str, Any]]:
    return [{"script": f"narration {tag}{i}", "image_prompt": f"prompt {tag}{i}"} for i in range(1, n + 1)]


def settings(out: Path, urls: list[str], **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        out_dir=out, tts="bench", comfy_urls=tuple(urls), workflow="sdxl", width=64, height=64,
        motion_width=64, motion_height=112, motion_length=MOTION_LENGTH, comfy_poll_interval=0.05,
    )
    base.update(kw)
    return Settings(**base)


_SERVER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from fakes.comfy_server import FakeComfyServer
image_s, motion_s = float(sys.argv[2]), float(sys.argv[3])

def job_time(graph):
    return motion_s if any(n.get("class_type") == "LoadImage" for n in graph.values()) else image_s

async def main():
    async with FakeComfyServer(job_time=job_time) as srv:
        srv.accept_any_model = True
        srv.cache_enabled = False  # a GPU renders every job; no shortcuts from the fake's cache
        print(srv.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes

asyncio.run(main())
"""


class ServerProcess:
    """A fake ComfyUI server (one simulated GPU) in a process of its own."""

    def __init__(self, image_s: float, motion_s: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(ROOT / "tests"), str(image_s), str(motion_s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def history(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/history", timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def jobs(self) -> int:
        """Jobs the server has finished (its history)."""
        return len(self.history())

    def busy_s(self, since: float) -> float:
        """Seconds the simulated GPU spent on jobs that started after ``since`` (epoch seconds):
        the job times as the server ran them, its own per-job cost included."""
        total = 0.0
        for entry in self.history().values():
            stamps = {m[0]: m[1].get("timestamp") for m in entry["status"]["messages"]}
            start, end = stamps.get("execution_start"), stamps.get("execution_success")
            if start and end and start / 1000 >= since:
                total += (end - start) / 1000
        return total

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def start_servers(n: int, image_s: float, motion_s: float) -> list[ServerProcess]:
    return [ServerProcess(image_s, motion_s) for _ in range(n)]


async def timed_run(state: dict[str, Any], s: Settings, on_event: Any = None) -> float:
    t0 = time.perf_counter()
    await agenerate_assets(state, s, on_event)
    return time.perf_counter() - t0


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    scale = 0.25 if args.quick else 1.0
    image_s, motion_s, tts_s = 0.2 * scale, 0.6 * scale, 0.3 * scale
    LatencyTTS.latency = tts_s
    n = args.scenes
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    result: dict[str, Any] = {"scenes": n, "image_job_s": image_s, "motion_job_s": motion_s, "tts_latency_s": tts_s}

    servers = start_servers(2, image_s, motion_s)
    try:
        full = dict(stages=("audio", "image", "motion"), motion_enabled=True)
        narration_path = math.ceil(n / LatencyTTS.max_concurrency) * tts_s
        busiest = n * (image_s + motion_s)
        log(f"overlap: {n} scenes with motion on 1 server ...")
        since = time.time()
        wall = await timed_run({"topic": "overlap", "scenes": scenes(n)}, settings(tmp / "o", [servers[0].url], **full))
        gpu_busy = servers[0].busy_s(since)
        result["wall_s"] = round(wall, 3)
        result["nominal_bound_s"] = round(max(busiest, narration_path), 3)
        result["nominal_overlap_ratio"] = round(wall / max(busiest, narration_path), 3)
        # The bound is the GPU's real busy time: the fake's own per-job cost is not the client's to hide.
        result["gpu_busy_s"] = round(gpu_busy, 3)
        result["overlap_ratio"] = round(wall / max(gpu_busy, narration_path), 3)

        log("sequential (the original system's order) ...")
        seq = await timed_run({"topic": "seq", "scenes": scenes(n)},
                              settings(tmp / "s", [servers[0].url], sequential=True, **full))
        result["sequential_wall_s"] = round(seq, 3)
        result["speedup_vs_sequential"] = round(seq / wall, 3)

        log("pool: 1 server against 2 ...")
        visual = dict(stages=("image", "motion"), motion_enabled=True)
        one = await timed_run({"topic": "p1", "scenes": scenes(n, "a")}, settings(tmp / "p1", [servers[0].url], **visual))
        two = await timed_run({"topic": "p2", "scenes": scenes(n, "b")},
                              settings(tmp / "p2", [s.url for s in servers], **visual))
        result["pool1_wall_s"] = round(one, 3)
        result["pool2_wall_s"] = round(two, 3)
        result["pool2_speedup"] = round(one / two, 3)
    finally:
        for srv in servers:
            srv.stop()

    log("client overhead per job (zero job time) ...")
    (fast,) = start_servers(1, 0.0, 0.0)
    try:
        starts: dict[int, tuple[float, float]] = {}
        spans: list[float] = []
        cpu: list[float] = []

        def on_event(ev: Event) -> None:
            if ev.kind == "scene_started" and ev.stage == "image" and ev.scene is not None:
                starts[ev.scene] = (time.perf_counter(), time.process_time())
            elif ev.kind == "scene_done" and ev.stage == "image" and ev.scene is not None:
                wall0, cpu0 = starts[ev.scene]
                spans.append(time.perf_counter() - wall0)
                cpu.append(time.process_time() - cpu0)

        await timed_run({"topic": "overhead", "scenes": scenes(60)},
                        settings(tmp / "c", [fast.url], stages=("image",), sequential=True), on_event)
        # One scene's image from start to done with a zero-time GPU: submit, wait, download, verify,
        # journal, record. The wall time includes the fake server's own share of the two cores.
        result["pipeline_overhead_ms_per_job"] = round(statistics.median(spans[5:]) * 1000, 2)  # after warm-up
        result["pipeline_cpu_ms_per_job"] = round(statistics.median(cpu[5:]) * 1000, 2)
        # The ComfyUI client alone (run + verified download of the image), as benchmarks/comfy_client.py.
        client = await measure_client(fast.url, 200, 20)
        result["client_overhead_ms_per_job"] = client["wall_ms_per_job_median"]
        result["client_cpu_ms_per_job"] = client["client_cpu_ms_per_job"]

        log("cached re-run: 100 scenes ...")
        s100 = settings(tmp / "k", [fast.url], stages=("audio", "image", "motion"), motion_enabled=True)
        LatencyTTS.latency = 0.0
        await timed_run({"topic": "cached", "scenes": scenes(100)}, s100)
        jobs_before = fast.jobs()
        result["cached_rerun_s"] = round(await timed_run({"topic": "cached", "scenes": scenes(100)}, s100), 3)
        result["cached_rerun_jobs_submitted"] = fast.jobs() - jobs_before
    finally:
        fast.stop()

    log("peak memory of motion downloads (fresh processes) ...")
    rss50 = rss_child(50)
    rss200 = rss_child(200)
    result["peak_rss_mb"] = rss200
    result["peak_rss_mb_50_frames"] = rss50
    result["rss_growth_50_to_200_frames_mb"] = round(rss200 - rss50, 1)
    try:
        from elastic import measure as measure_elastic  # needs the serverless endpoint members (issue #19)
    except ImportError:  # --old-ref on code from before them
        measure_elastic = None
    if measure_elastic is not None:
        log("elastic: 100 image jobs of 0.5 s on an endpoint of 8 workers; a server plus an endpoint ...")
        result["elastic"] = await measure_elastic()
    result["targets"] = {
        "elastic.endpoint.wall_over_ideal": "<= 1.1", "elastic.endpoint.notice_p95_s": "<= 1.0",
        "elastic.endpoint.status_rate_max": "<= 1 per job per second", "elastic.mixed": "both members busy",
        "overlap_ratio": "<= 1.05", "pool2_speedup": ">= 1.9", "client_overhead_ms_per_job": "<= 3", "pipeline_overhead_ms_per_job": "as low as it goes",
        "cached_rerun_s": "<= 1.0", "peak_rss_mb": "<= 150, flat as frames grow",
    }
    return result


def rss_child(frames: int) -> float:
    """Run the motion memory scenario in a fresh interpreter; its peak RSS in MiB."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(frames)], capture_output=True, text=True,
                         check=True, stdin=subprocess.DEVNULL)
    return float(out.stdout.strip().splitlines()[-1])


def frame_blob(size: int = 2_000_000) -> bytes:
    """A PNG of about ``size`` bytes (noise does not compress)."""
    import numpy as np
    from PIL import Image

    side = int(math.sqrt(size / 3))
    arr = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", compress_level=0)
    return buf.getvalue()


async def rss_scenario(frames: int) -> float:
    """Motion for 5 scenes, each ``frames`` frames of about 2 MB, downloaded one at a time."""
    from PIL import Image

    blob = frame_blob()
    srv = FakeComfyServer()
    srv.accept_any_model = True
    srv.start_in_thread()

    def outputs(graph: dict[str, Any]) -> dict[str, Any]:
        prefix = graph["200"]["inputs"]["filename_prefix"]
        refs = [srv.add_file(f"{prefix.rsplit('/', 1)[-1]}_{i:05d}_.png", blob, "bench") for i in range(1, frames + 1)]
        return {"200": {"images": refs}, "108": {}}

    srv.outputs_for = outputs
    tmp = Path(tempfile.mkdtemp(prefix="sf-rss-"))
    state_scenes = []
    for i in range(1, 6):
        img = tmp / f"in_{i}.png"
        Image.new("RGB", (64, 112), (i * 40, 80, 120)).save(img)
        state_scenes.append({"script": f"s{i}", "image_prompt": f"p{i}", "image_path": str(img)})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        await agenerate_assets({"topic": "rss", "scenes": state_scenes},
                               settings(tmp / "out", [srv.url], stages=("motion",), motion_enabled=True))
    finally:
        srv.stop()
    got = sum(len(list((tmp / "out" / "rss" / f"motion_scene_{i}").glob("frame_*.png"))) for i in range(1, 6))
    assert got == 5 * frames, got
    del base
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="divide every job time by 4")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--old-ref", help="also run the same benchmark on src/ of this git ref, side by side")
    args = ap.parse_args()
    if args.rss_child:
        print(asyncio.run(rss_scenario(args.rss_child)))
        return
    out: dict[str, Any] = {}
    if args.old_ref:
        log(f"=== {args.old_ref} ===")
        out["old"] = run_ref(args.old_ref, args)
        log("=== this checkout ===")
    res = asyncio.run(bench(args))
    res["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    if args.old_ref:
        out["new"] = res
        keys = ("overlap_ratio", "pool2_speedup", "pipeline_overhead_ms_per_job", "client_overhead_ms_per_job",
                "cached_rerun_s", "peak_rss_mb")
        out["side_by_side"] = {k: {"old": out["old"].get(k), "new": res.get(k)} for k in keys}
        res = out
    print(json.dumps(res))


def _entry_points_of(ref: str, src: Path) -> None:
    """The backends ``ref`` registers (its pyproject's entry points), as a dist-info ahead of the installed one:
    the installed metadata names today's classes (``WanBackend``), which older code may not have."""
    import tomllib

    project = tomllib.loads(subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:pyproject.toml"], check=True,
                                           capture_output=True, text=True).stdout)["project"]
    info = src / f"sceneforge-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sceneforge\nVersion: {project['version']}\n")
    groups = project.get("entry-points", {})
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
        for group, points in groups.items()))


def run_ref(ref: str, args: argparse.Namespace) -> dict[str, Any]:
    """This benchmark run with ``src/`` of git ``ref`` (exported to a temporary folder), in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="sf-bench-ref-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        _entry_points_of(ref, Path(tmp) / "src")
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        cmd = [sys.executable, __file__, "--scenes", str(args.scenes)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["ref"] = ref
    return result


if __name__ == "__main__":
    main()
