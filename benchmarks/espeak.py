"""espeak benchmark: 8 Korean scenes through the offline narration backend.

Measures the first batch (worker start-up included) and a second batch on the
warm workers, with two workers by default. The last line on stdout is one JSON object.

    python benchmarks/espeak.py [--workers 2] [--scenes 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from sceneforge.tts.espeak import EspeakBackend, EspeakOptions

TEXTS = [
    "요즘 AI 얘기 너무 많이 나오죠? 오늘은 그 이야기를 해 보겠습니다.",
    "그런데 AI가 정확히 뭘 하는지 알고 계신가요? 생각보다 단순합니다.",
    "AI는 수많은 예시에서 패턴을 배워서, 다음에 올 것을 예측합니다.",
    "그래서 글도 쓰고, 그림도 그리고, 목소리도 만들 수 있죠.",
    "물론 틀릴 때도 있습니다. 그래서 사람이 꼭 확인해야 해요.",
    "데이터가 좋을수록 결과도 좋아집니다. 쓰레기를 넣으면 쓰레기가 나오죠.",
    "앞으로는 더 많은 일을 AI와 함께 하게 될 거예요.",
    "다음 영상에서 더 쉽게 알려드릴게요. 구독 잊지 마세요!",
]


async def batch(backend: EspeakBackend, out: Path, n: int, tag: str) -> float:
    t0 = time.perf_counter()
    await asyncio.gather(*(backend.synthesize(TEXTS[i % len(TEXTS)], out / f"{tag}_{i}.mp3") for i in range(n)))
    return time.perf_counter() - t0


async def one_round(workers: int, n: int) -> tuple[float, float]:
    backend = EspeakBackend(EspeakOptions(workers=workers))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cold = await batch(backend, Path(tmp), n, "cold")
            warm = await batch(backend, Path(tmp), n, "warm")
    finally:
        await backend.aclose()
    return cold, warm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    colds, warms = [], []
    for _ in range(args.rounds):
        cold, warm = asyncio.run(one_round(args.workers, args.scenes))
        colds.append(cold)
        warms.append(warm)
    print(json.dumps({
        "workers": args.workers, "scenes": args.scenes, "rounds": args.rounds,
        "cold_s_median": round(statistics.median(colds), 3), "warm_s_median": round(statistics.median(warms), 3),
        "cold_s": [round(x, 3) for x in colds], "warm_s": [round(x, 3) for x in warms],
    }))


if __name__ == "__main__":
    main()
