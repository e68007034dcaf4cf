"""Issue #21 on the review page: *Render final video* beside the preview makes final.mp4 and shows it with
its cover."""

from __future__ import annotations

from pathlib import Path

from page_helpers import expect
from service_helpers import offline


async def test_render_final_video_shows_the_final_cut_and_its_cover(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit({"topic": "final cut", "scenes": [{"script": "Hi.", "image_prompt": "a red door"}]})
    await svc.wait("final-cut")
    page = await browser.open(svc.url, "/#/t/final-cut")
    head = page.get_by_role("region", name="Topic")
    await expect(head.get_by_role("status")).to_have_text("done")
    await head.get_by_role("button", name="Render final video").click()
    final = page.get_by_role("region", name="Preview").get_by_label("Final video")
    await expect(final).to_be_visible(timeout=120_000)
    assert "/files/final-cut/final.mp4" in (await final.get_attribute("src") or "")
    await expect(page.get_by_role("img", name="Cover")).to_be_visible()
    assert (svc.out / "final-cut" / "final.mp4").stat().st_size > 0
    await expect(head.get_by_role("button", name="Render final video")).to_be_enabled()
