"""Service benchmark: reading a big topic, event latency to an SSE client, memory with a full queue.

Each figure runs ``sceneforge serve`` as a real process (port 0) and talks to it over HTTP from
this one, as a client on another machine would; ComfyUI is the fake server in a process of its
own (``benchmarks/pipeline.py``'s), simulating one GPU. Progress goes to stderr; the last line on
stdout is one JSON object.

* ``get_topic_p95_ms``: ``GET /api/topics/{slug}`` of a 200-scene topic whose every scene has
  narration, subtitles, an image and 81 motion frames (2.4 MB of JSON per answer: each frame's
  path and URL), and the same topic without motion (130 kB), after warm-up, the answer fully
  read; ``..._after_change_`` is the first read after the topic changed (nothing cached).
* ``event_latency_p95_ms``: from the moment the engine made an event (its ``time``) to the
  moment the SSE client read it, for every engine event of a 30-scene offline run.
* ``stalled_50_*``: 50 clients open a topic's event stream over an 8 MB history and never read:
  the service's peak RSS, and ``/api/health`` latency meanwhile (issue #17.3).
* ``big_submission_*``: a 4.9 MB submission of 130 000 scenes, and ``/api/health`` latency while it
  is read and checked (issue #17.4: no request delays another by more than 200 ms).
* ``rss_mb_20_topics_queued``: the service process's peak resident memory while 2 of 20
  submitted topics (10 scenes each) run and 18 wait, sampled from ``/proc``; its espeak worker
  processes are reported beside it.

    python benchmarks/serve.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline import ServerProcess  # noqa: E402

FRAMES = 81


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


class ServiceProcess:
    """``sceneforge serve`` on 127.0.0.1, a free port, in a process of its own."""

    def __init__(self, out: Path, *args: str) -> None:
        cmd = [sys.executable, "-m", "sceneforge.cli", "serve", "--out", str(out), "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(" on ", 1)[1].split()[0]

    def rss_mb(self) -> tuple[float, float]:
        """(this process, its child processes) resident memory in MB."""
        own = _rss_kb(self.proc.pid)
        children = sum(_rss_kb(int(c)) for c in _children(self.proc.pid))
        return own / 1024, children / 1024

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[str]:
    """Child processes of every thread of ``pid`` (workers may be started from any thread)."""
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += (task / "children").read_text().split()
        except OSError:
            pass
    return found


def big_topic(out: Path, n: int, frames: int, slug: str) -> None:
    """A finished topic as the engine leaves one (small stand-in files: the answer is what is measured)."""
    root = out / slug
    root.mkdir(parents=True)
    scenes = []
    for i in range(1, n + 1):
        scene: dict[str, Any] = {"script": f"Narration of scene {i}, a sentence of ordinary length.",
                                 "image_prompt": f"a lighthouse at dusk, scene {i}, cinematic, detailed",
                                 "audio_path": str(root / f"audio_scene_{i}.mp3"), "audio_duration": 3.2,
                                 "subtitle_path": str(root / f"audio_scene_{i}.srt"),
                                 "image_path": str(root / f"image_scene_{i}.png"), "image_seed": 123456789 + i}
        for name in (f"audio_scene_{i}.mp3", f"audio_scene_{i}.srt", f"image_scene_{i}.png"):
            (root / name).write_bytes(b"x")
        if frames:
            folder = root / f"motion_scene_{i}"
            folder.mkdir()
            for f in range(1, frames + 1):
                (folder / f"frame_{f:04d}.png").write_bytes(b"x")
            scene.update(motion_frames_path=[str(folder / f"frame_{f:04d}.png") for f in range(1, frames + 1)],
                         motion_fps=16.0, motion_seed=987654321 + i)
        scenes.append(scene)
    (root / "scenes.json").write_text(json.dumps({"topic": slug, "scenes": scenes}, ensure_ascii=False, indent=2))


async def time_gets(http: aiohttp.ClientSession, url: str, count: int, *,
                    touch: Path | None = None) -> tuple[list[float], int]:
    """Sequential GETs after a warm-up; with ``touch``, that folder's mtime changes before each one, so
    the service cannot answer from its cache (the first read after any change)."""
    for _ in range(20):  # warm-up: imports, caches
        async with http.get(url) as resp:
            await resp.read()
    times, size = [], 0
    for i in range(count):
        if touch is not None:
            os.utime(touch, ns=(time.time_ns(), time.time_ns() + i))
        t0 = time.perf_counter()
        async with http.get(url) as resp:
            body = await resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(body)
    return times, size


async def get_topic_figures(tmp: Path) -> dict[str, Any]:
    out = tmp / "big"
    big_topic(out, 200, FRAMES, "two-hundred")
    big_topic(out, 200, 0, "two-hundred-stills")
    svc = ServiceProcess(out, "--offline")
    try:
        async with aiohttp.ClientSession() as http:
            motion, size = await time_gets(http, f"{svc.url}/api/topics/two-hundred", 300)
            cold, _ = await time_gets(http, f"{svc.url}/api/topics/two-hundred", 100, touch=out / "two-hundred")
            stills, small = await time_gets(http, f"{svc.url}/api/topics/two-hundred-stills", 300)
            stills_cold, _ = await time_gets(http, f"{svc.url}/api/topics/two-hundred-stills", 100,
                                             touch=out / "two-hundred-stills")
    finally:
        svc.stop()
    return {"get_topic_p95_ms": round(p95(motion), 2), "get_topic_p50_ms": round(statistics.median(motion), 2),
            "get_topic_after_change_p95_ms": round(p95(cold), 2), "get_topic_bytes": size,
            "get_topic_stills_p95_ms": round(p95(stills), 2),
            "get_topic_stills_after_change_p95_ms": round(p95(stills_cold), 2), "get_topic_stills_bytes": small}


async def event_latency(tmp: Path) -> dict[str, Any]:
    svc = ServiceProcess(tmp / "events", "--offline")
    lat: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            first = {"topic": "latency", "scenes": [{"script": "Hello.", "image_prompt": "a cat"}]}
            async with http.post(f"{svc.url}/api/topics", json=first) as resp:
                assert resp.status == 202
            async with http.get(f"{svc.url}/api/topics/latency/events", params={"until": "idle"}) as resp:
                last = 0
                async for line in resp.content:
                    if line.startswith(b"id: "):
                        last = int(line[4:])
            async with http.get(f"{svc.url}/api/topics/latency/events", params={"after": str(last)}) as stream:
                scenes = [{"script": f"Scene {i} says a short line.", "image_prompt": f"prompt {i}"} for i in range(30)]
                async with http.post(f"{svc.url}/api/topics", json={"topic": "latency", "scenes": scenes}) as resp:
                    assert resp.status == 202
                async for line in stream.content:
                    if not line.startswith(b"data: "):
                        continue
                    now = time.time()
                    event = json.loads(line[6:])
                    if event["kind"] != "status":
                        lat.append((now - event["time"]) * 1000)
                    elif event["data"]["status"] in ("done", "failed"):
                        break
    finally:
        svc.stop()
    return {"event_latency_p95_ms": round(p95(lat), 2), "event_latency_p50_ms": round(statistics.median(lat), 2),
            "events_measured": len(lat)}


async def queued_memory(tmp: Path) -> dict[str, Any]:
    gpu = ServerProcess(1.0, 1.0)
    svc = ServiceProcess(tmp / "queue", "--comfy-url", gpu.url, "--tts", "espeak", "--workflow", "sdxl",
                         "--width", "64", "--height", "64")
    try:
        idle = svc.rss_mb()[0]
        async with aiohttp.ClientSession() as http:
            for t in range(20):
                scenes = [{"script": f"Topic {t}, scene {i}.", "image_prompt": f"topic {t} prompt {i}"} for i in range(10)]
                async with http.post(f"{svc.url}/api/topics", json={"topic": f"queued {t}", "scenes": scenes}) as resp:
                    assert resp.status == 202, await resp.text()
            peak, children = 0.0, 0.0
            for _ in range(25):
                own, kids = svc.rss_mb()
                peak, children = max(peak, own), max(children, kids)
                await asyncio.sleep(0.2)
            async with http.get(f"{svc.url}/api/topics") as resp:
                listing = await resp.json()
    finally:
        svc.stop()
        gpu.stop()
    states = [t["status"] for t in listing]
    return {"rss_mb_20_topics_queued": round(peak, 1), "rss_mb_idle": round(idle, 1),
            "rss_mb_espeak_workers": round(children, 1),
            "topics_running_queued": [states.count("running"), states.count("queued")]}


def stalled_client(url: str, path: str) -> socket.socket:
    """A client that asks for a stream and never reads (a small receive buffer: the server's sends block)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    return sock


async def health_while(http: aiohttp.ClientSession, url: str, busy: asyncio.Future[Any],
                       minimum: int = 20) -> list[float]:
    """``GET /api/health`` latencies (ms) while ``busy`` runs (at least ``minimum`` of them)."""
    lat: list[float] = []
    while not busy.done() or len(lat) < minimum:
        began = time.perf_counter()
        async with http.get(f"{url}/api/health") as resp:
            await resp.read()
        lat.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.02)
    return lat


async def stalled_streams(tmp: Path, clients: int = 50) -> dict[str, Any]:
    """Issue #17.3: a topic's events file at its 8 MB compaction point, 50 clients that connect to its
    stream and never read: the service's peak RSS, and /api/health latency meanwhile."""
    out = tmp / "stalled"
    big_topic(out, 5, 0, "long")
    events = out / "long" / ".sceneforge" / "service" / "events.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    with events.open("wb") as fh:
        for i in range(1, 8 * 1024 + 1):  # 8 MB: 8192 events of about 1 kB
            fh.write(json.dumps({"id": i, "kind": "job_progress", "data": {"pad": "x" * 980}}).encode() + b"\n")
    svc = ServiceProcess(out, "--offline")
    socks: list[socket.socket] = []
    try:
        idle = svc.rss_mb()[0]
        async with aiohttp.ClientSession() as http:
            async def connect_all() -> float:
                peak = 0.0
                for _ in range(clients):
                    socks.append(stalled_client(svc.url, "/api/topics/long/events"))
                    await asyncio.sleep(0.01)
                for _ in range(30):  # 3 s with every client stalled
                    peak = max(peak, svc.rss_mb()[0])
                    await asyncio.sleep(0.1)
                return peak

            busy = asyncio.ensure_future(connect_all())
            lat = await health_while(http, svc.url, busy)
            peak = busy.result()
    finally:
        for sock in socks:
            sock.close()
        svc.stop()
    return {"stalled_50_rss_mb": round(peak, 1), "stalled_50_rss_mb_idle": round(idle, 1),
            "stalled_50_health_p95_ms": round(p95(lat), 1), "stalled_50_health_max_ms": round(max(lat), 1)}


async def big_submission(tmp: Path, scenes: int = 145_000) -> dict[str, Any]:
    """Issue #17.4: a 4.9 MB submission (130 000 scenes) is read and checked while /api/health is asked."""
    os.environ["SCENEFORGE_SERVE_MAX_SCENES"] = str(scenes)  # (5000 by default: measure the whole check)
    try:
        svc = ServiceProcess(tmp / "big", "--offline", "--stages", "audio")
    finally:
        del os.environ["SCENEFORGE_SERVE_MAX_SCENES"]
    body = json.dumps({"topic": "huge", "scenes": [{"script": "s", "image_prompt": "p"}] * scenes}, separators=(",", ":"))
    try:
        async with aiohttp.ClientSession() as http:
            async def submit() -> int:
                async with http.post(f"{svc.url}/api/topics", data=body,
                                     headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    return resp.status

            began = time.perf_counter()
            busy = asyncio.ensure_future(submit())
            lat = await health_while(http, svc.url, busy, minimum=5)
            took = time.perf_counter() - began
            status = busy.result()
            cancel = await http.post(f"{svc.url}/api/topics/huge/cancel")
            cancel.release()
    finally:
        svc.stop()
    return {"big_submission_mb": round(len(body) / 1e6, 2), "big_submission_status": status,
            "big_submission_s": round(took, 2), "big_submission_health_max_ms": round(max(lat), 1),
            "big_submission_health_p95_ms": round(p95(lat), 1)}


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sceneforge-serve-bench-") as name:
        tmp = Path(name)
        result: dict[str, Any] = {}
        log("GET /api/topics/{slug}, 200 scenes ...")
        result.update(await get_topic_figures(tmp))
        log("event latency ...")
        result.update(await event_latency(tmp))
        log("memory with 20 topics queued ...")
        result.update(await queued_memory(tmp))
        log("50 stalled event streams on an 8 MB history ...")
        result.update(await stalled_streams(tmp))
        log("a 4.9 MB submission ...")
        result.update(await big_submission(tmp))
        result["goals"] = {"get_topic_p95_ms": 20, "event_latency_p95_ms": 50, "rss_mb_20_topics_queued": 250,
                           "stalled_50_rss_mb": 250, "stalled_50_health_p95_ms": 100,
                           "big_submission_health_max_ms": 200}
        result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
