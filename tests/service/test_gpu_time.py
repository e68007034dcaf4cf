"""Issue #19, item 6, through the service: a topic's answer shows each scene's GPU time and cost (what made
its current assets) and the topic's totals (every job, re-rolls included); the review page shows both."""

from __future__ import annotations

from pathlib import Path

from page_helpers import expect
from service_helpers import topic, with_comfy


async def test_gpu_time_and_cost_per_scene_and_per_topic(start, comfy, browser, tmp_path: Path):
    comfy.job_time = 0.05
    svc = await start(with_comfy(tmp_path, comfy, stages=("image",),
                                 comfy_urls=[{"url": comfy.url, "price_per_second": 0.5}]))  # as sceneforge.toml
    await svc.submit(topic("costly", 2))
    state = await svc.wait("costly")
    scene = state["scenes"][0]
    assert scene["gpu_seconds"]["image"] > 0 and scene["gpu_cost"]["image"] > 0
    first_total = state["gpu_seconds_total"]["image"]
    assert abs(first_total - sum(s["gpu_seconds"]["image"] for s in state["scenes"])) < 1e-6
    # A re-roll replaces the scene's figures and adds to the topic's total.
    await svc.call("POST", "/api/topics/costly/scenes/1/regenerate", body={"stage": "image"})
    again = await svc.wait("costly")
    assert again["gpu_seconds_total"]["image"] > first_total
    assert abs(again["gpu_seconds_total"]["image"] - first_total - again["scenes"][0]["gpu_seconds"]["image"]) < 1e-6

    page = await browser.open(svc.url, "/#/t/costly")
    card = page.get_by_role("region", name="Scene 1", exact=True)
    await expect(card.get_by_text("GPU ", exact=False)).to_have_text(
        f"GPU {sum(again['scenes'][0]['gpu_seconds'].values()):.1f} s · $"
        f"{sum(again['scenes'][0]['gpu_cost'].values()):.4f}")
    await expect(page.get_by_role("region", name="Topic").get_by_text("in all (re-rolls included)",
                                                                       exact=False)).to_be_visible()
