"""Elastic GPUs: a RunPod endpoint (the fake control plane, worker-comfyui workers in front of fake
ComfyUIs) alone and in a pool with a local ComfyUI server, through the ``comfyui`` image backend.

All fakes run in this process (their GPU time is simulated with sleeps, so they take little CPU).
Figures (issue #19):

* ``endpoint_wall_s``: 100 image jobs of 0.5 s on an endpoint of 8 workers; ideal 100 x 0.5 / 8 = 6.25 s
  (target: at most 1.1 x ideal);
* ``notice_p95_s``: from a job's completion on the endpoint to the client reading it (target p95 <= 1 s);
  ``notice_p95_after_first_s`` the same for the jobs submitted once the client had seen a job end (the
  first jobs are asked about once a second: nothing yet tells when they should end);
* ``status_rate_max``: the most ``/status`` requests one job got in any one second (target <= 1);
* ``mixed``: 40 image jobs of 0.5 s on one local server plus an endpoint of 4 workers: jobs each took
  and each member's busy share of the wall time (both kept busy).

    python benchmarks/elastic.py     # prints one JSON object
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakes.comfy_server import FakeComfyServer  # noqa: E402
from fakes.runpod import FakeRunPod  # noqa: E402
from sceneforge.comfy.client import ComfyClient  # noqa: E402
from sceneforge.comfy.endpoints.runpod import RunPodClient  # noqa: E402
from sceneforge.comfy.graphs.workflow import Workflow  # noqa: E402
from sceneforge.comfy.pool.pool import ComfyPool  # noqa: E402
from sceneforge.images import ImageRequest  # noqa: E402
from sceneforge.images.comfyui import ComfyImageBackend  # noqa: E402

KEY = "bench-key"
JOB_S = 0.5


def gpu(job_s: float = JOB_S) -> FakeComfyServer:
    srv = FakeComfyServer(job_time=job_s)
    srv.accept_any_model = True
    return srv


class Noticing(RunPodClient):
    """A RunPod member that notes when it first read each job's end."""

    noticed: dict[str, float]

    async def status(self, job_id: str) -> dict[str, Any] | None:
        answer = await super().status(job_id)
        if answer is not None and answer.get("status") == "COMPLETED":
            self.noticed.setdefault(job_id, time.monotonic())
        return answer


async def run_images(pool: ComfyPool, n: int, out: Path) -> float:
    backend = ComfyImageBackend(Workflow.load("sdxl"), pool=pool, width=64, height=64, rng=random.Random(1))
    await backend.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(backend.generate(ImageRequest(i, f"scene {i}", out / f"s{i}.png")) for i in range(1, n + 1)))
    return time.perf_counter() - t0


def max_rate(calls: list[float]) -> int:
    """The most calls within any one-second window."""
    best, j = 0, 0
    for i, t in enumerate(calls):
        while t - calls[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


async def endpoint_alone(out: Path, jobs: int = 100, workers: int = 8) -> dict[str, Any]:
    async with FakeRunPod(api_key=KEY, workers=workers, comfy_factory=gpu) as fake:
        for w in fake.workers:  # warm workers: cold starts are measured apart, not in the throughput figure
            w.comfy = await gpu().start()
        client = Noticing(fake.base_url, server=fake.member_url, api_key=KEY, concurrency=2 * workers)
        client.noticed = {}
        pool = ComfyPool([client])
        try:
            wall = await run_images(pool, jobs, out)
        finally:
            await pool.aclose()
        notice = [client.noticed[j.id] - j.finished for j in fake.jobs.values() if j.id in client.noticed]
        first_seen = min(client.noticed.values())  # before it, the client knows no run time: polls once a second
        warm = [client.noticed[j.id] - j.finished for j in fake.jobs.values()
                if j.id in client.noticed and j.submitted > first_seen]
        rates = [max_rate(sorted(c)) for c in fake.status_calls.values()]
        done = list(fake.jobs.values())
        busy = max(j.finished for j in done) - min(j.started for j in done)  # the workers' own time, fake overhead in
    ideal = jobs * JOB_S / workers
    return {"jobs": jobs, "workers": workers, "endpoint_wall_s": round(wall, 3), "ideal_s": ideal,
            "wall_over_ideal": round(wall / ideal, 3), "workers_busy_s": round(busy, 3),
            "wall_over_workers_busy": round(wall / busy, 3), "notice_p50_s": round(statistics.median(notice), 3),
            "notice_p95_s": round(statistics.quantiles(notice, n=20)[-1], 3),
            "notice_p95_after_first_s": round(statistics.quantiles(warm, n=20)[-1], 3), "status_rate_max": max(rates),
            "status_requests": sum(len(c) for c in fake.status_calls.values())}


async def mixed(out: Path, jobs: int = 40, workers: int = 4) -> dict[str, Any]:
    local = await gpu().start()
    try:
        async with FakeRunPod(api_key=KEY, workers=workers, comfy_factory=gpu) as fake:
            for w in fake.workers:
                w.comfy = await gpu().start()
            pool = ComfyPool([ComfyClient(local.url), RunPodClient(fake.base_url, server=fake.member_url,
                                                                     api_key=KEY, concurrency=2 * workers)])
            try:
                wall = await run_images(pool, jobs, out)
            finally:
                await pool.aclose()
            on_endpoint = len(fake.submitted)
    finally:
        await local.aclose()
    on_local = jobs - on_endpoint
    return {"jobs": jobs, "wall_s": round(wall, 3), "ideal_s": round(jobs * JOB_S / (workers + 1), 3),
            "local_jobs": on_local, "endpoint_jobs": on_endpoint,
            "local_busy": round(on_local * JOB_S / wall, 3),
            "endpoint_busy_per_worker": round(on_endpoint * JOB_S / workers / wall, 3)}


async def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        a.mkdir()
        b.mkdir()
        return {"endpoint": await endpoint_alone(a), "mixed": await mixed(b)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure())))
