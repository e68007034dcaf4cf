"""gather_all: a stopped run returns only after every part finished its clean-up (unlike asyncio.gather)."""

from __future__ import annotations

import asyncio

import pytest

from sceneforge.pipeline.tasks import gather_all


async def _quick() -> str:
    await asyncio.Event().wait()  # until cancelled; ends at once
    return "never"


async def test_a_cancelled_gather_waits_for_every_parts_clean_up_and_cancels_each_once():
    """The shape of a stopped scene: narration ends at once, the ComfyUI job needs two server calls
    (delete, interrupt) to clean up, run shielded; a second cancel would cut them short."""
    log: list[str] = []
    cleanup_may_end = asyncio.Event()

    async def server_calls() -> None:
        log.append("delete")
        await cleanup_may_end.wait()
        log.append("interrupt")

    async def comfy_job() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            try:
                await asyncio.shield(server_calls())
            except asyncio.CancelledError:
                log.append("clean-up cut short")
            raise
        return "never"

    run = asyncio.ensure_future(gather_all(_quick(), comfy_job()))
    await asyncio.sleep(0)
    run.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["delete"] and not run.done()  # asyncio.gather would be done here, the interrupt unsent
    cleanup_may_end.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert log == ["delete", "interrupt"]


async def test_results_in_order_and_the_first_failure_after_all_ended():
    assert await gather_all() == []
    order: list[int] = []

    async def part(n: int, fail: bool = False) -> int:
        for _ in range(3 - n):
            await asyncio.sleep(0)
        order.append(n)
        if fail:
            raise ValueError(f"part {n} failed")
        return n * 10

    assert await gather_all(part(1), part(2)) == [10, 20]
    order.clear()
    with pytest.raises(ValueError, match="part 1 failed"):
        await gather_all(part(0), part(1, fail=True), part(2, fail=True))
    assert sorted(order) == [0, 1, 2]  # every part ran to its end before the failure was raised
