"""Micro-benchmark: the ComfyUI client's own cost per job (issue #10).

One job = ``run()`` (submit -> executing(null) -> history) + ``download()`` of its
small PNG, against the fake ComfyUI with zero job time, one job after another.
The fake runs in a *separate process*, so the CPU time of this process is the
client's alone; the wall time per job includes the fake's share of the 2 cores.

    python benchmarks/comfy_client.py                   # this checkout
    python benchmarks/comfy_client.py --old-ref main    # and a git ref side by side

``--old-ref`` exports ``src/`` of that ref (``git archive``) to a temporary folder
and measures it in a subprocess against the same fake server. The last line on
stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 123456}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench/img"}},
}

_SERVER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from fakes.comfy_server import FakeComfyServer

async def main():
    async with FakeComfyServer(job_time=0.0) as srv:
        srv.cache_enabled = False  # every job renders and saves a new PNG
        print(srv.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes

asyncio.run(main())
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def measure(url: str, jobs: int, warmup: int) -> dict[str, Any]:
    """Run ``warmup + jobs`` jobs one after another; per-job wall and CPU times in ms."""
    import sceneforge
    from sceneforge.comfy.client import ComfyClient

    walls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sf-bench-client-") as tmp:
        async with ComfyClient(url) as client:
            cpu0 = 0.0
            for i in range(warmup + jobs):
                if i == warmup:
                    cpu0 = time.process_time()
                    t_all = time.perf_counter()
                graph = copy.deepcopy(GRAPH)
                graph["1"]["inputs"]["color"] = i
                t0 = time.perf_counter()
                result = await client.run(graph)
                await client.download(result.images()[0], Path(tmp) / f"{i}.png")
                walls.append(time.perf_counter() - t0)
            cpu = time.process_time() - cpu0
            total = time.perf_counter() - t_all
    timed = walls[warmup:]
    return {
        "source": str(Path(sceneforge.__file__).parents[1]),
        "jobs": jobs,
        "wall_ms_per_job_median": round(statistics.median(timed) * 1000, 3),
        "wall_ms_per_job_mean": round(total / jobs * 1000, 3),
        "client_cpu_ms_per_job": round(cpu / jobs * 1000, 3),
    }


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(ROOT / "tests")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def measure_ref(ref: str, url: str, jobs: int, warmup: int) -> dict[str, Any]:
    """The same measurement with ``src/`` of git ``ref``, in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="sf-bench-ref-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        out = subprocess.run(
            [sys.executable, __file__, "--measure", url, "--jobs", str(jobs), "--warmup", str(warmup)],
            env=env, check=True, capture_output=True, text=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["ref"] = ref
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--old-ref", help="also measure src/ of this git ref (e.g. main)")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # internal: measure against URL
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.measure, args.jobs, args.warmup))))
        return
    proc, url = start_server()
    try:
        out: dict[str, Any] = {}
        if args.old_ref:
            log(f"old: {args.old_ref} ...")
            out["old"] = measure_ref(args.old_ref, url, args.jobs, args.warmup)
        log("new: this checkout ...")
        out["new"] = asyncio.run(measure(url, args.jobs, args.warmup))
        if "old" in out:
            out["wall_speedup"] = round(out["old"]["wall_ms_per_job_median"] / out["new"]["wall_ms_per_job_median"], 2)
            out["cpu_speedup"] = round(out["old"]["client_cpu_ms_per_job"] / out["new"]["client_cpu_ms_per_job"], 2)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
