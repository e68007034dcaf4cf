"""The review page in Chromium: a phone's width (390 px, no horizontal scroll), Korean text in the served font,
the keyboard reaching and using every main control, and the event stream reconnecting and catching up."""

from __future__ import annotations

import json
from pathlib import Path

from page_helpers import expect
from service_helpers import offline, topic

from sceneforge.service.fonts import FONT_URL

KOREAN = {"topic": "요즘 AI 이야기", "scenes": [
    {"script": "요즘 AI 얘기 너무 많이 나오죠? 그런데 AI가 정확히 뭘 하는지 알고 계신가요?",
     "image_prompt": "a_very_long_prompt_without_any_spaces_" * 6},
    {"script": "AI는 수많은 예시에서 패턴을 배워서, 다음에 올 것을 예측합니다.", "image_prompt": "colorful dots"},
]}
NO_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def scene(page, n: int):
    return page.get_by_role("region", name=f"Scene {n}", exact=True)


async def test_at_390_px_nothing_scrolls_sideways_and_korean_uses_the_served_font(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(KOREAN)
    await svc.wait("요즘-ai-이야기")
    await svc.call("PATCH", "/api/topics/요즘-ai-이야기/scenes/1", body={"script": "다시 녹음합니다."})
    await svc.wait("요즘-ai-이야기")  # two narration takes on scene 1
    page = browser.page
    await page.set_viewport_size({"width": 390, "height": 844})
    fonts: list[str] = []
    page.on("response", lambda r: fonts.append(r.url) if r.url.endswith(FONT_URL) and r.status == 200 else None)

    await browser.open(svc.url)
    await expect(page.get_by_role("link", name="요즘 AI 이야기")).to_be_visible()
    await page.get_by_label("Scenes (JSON)").fill(json.dumps([{"script": "", "image_prompt": "y" * 300}]))
    await page.get_by_role("button", name="Create topic").click()
    await expect(page.get_by_role("list", name="Problems")).to_contain_text("scene 1: script is empty")
    browser.take_errors("status of 422")
    assert await page.evaluate(NO_SCROLL) and await page.evaluate("document.documentElement.scrollWidth") <= 390

    await page.get_by_role("link", name="요즘 AI 이야기").click()
    await expect(scene(page, 2).get_by_role("status")).to_have_text("done")
    await expect(scene(page, 1).get_by_role("list", name="Narration takes").get_by_role("listitem")).to_have_count(2)
    await page.evaluate("document.fonts.ready")
    assert await page.evaluate("document.fonts.check('16px \"Sceneforge CJK\"', '요즘')")
    assert fonts, "the page never loaded the CJK font the service serves"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    widths = await page.evaluate("[...document.querySelectorAll('section')].map(s => s.getBoundingClientRect().right)")
    assert max(widths) <= 390


async def test_every_main_control_is_reached_and_used_with_the_keyboard(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("keys", 2))
    await svc.wait("keys")
    page = await browser.open(svc.url, "/#/t/keys")
    await expect(scene(page, 2).get_by_role("status")).to_have_text("done")
    await expect(scene(page, 2).get_by_role("list", name="Image takes")).to_be_visible()

    describe = """() => { const e = document.activeElement; const box = e.closest('section[aria-label]');
      const name = e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].textContent) || e.textContent;
      return `${box ? box.getAttribute('aria-label') + ': ' : ''}${name.trim()}`; }"""
    reached: list[str] = []
    for _ in range(200):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate(describe))
    for n in (1, 2):
        for control in ("Script", "Image prompt", "Motion prompt", "Voice", "Save", "Regenerate narration",
                        "Regenerate image", "Seed for the next re-roll", "Reference image"):
            assert f"Scene {n}: {control}" in reached, (n, control, reached)
    for control in ("Topic: Render preview", "← All topics"):
        assert control in reached, (control, reached)

    # Type a new script, Tab to Save, press Enter: the scene is remade.
    card = scene(page, 1)
    await card.get_by_label("Script").focus()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Typed with the keyboard.")
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await page.evaluate(describe) == "Scene 1: Save":
            break
    await page.keyboard.press("Enter")
    await expect(card.locator(".subtitle")).to_have_text("Typed with the keyboard.")
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
    # And a re-roll, with Space on the focused button.
    await card.get_by_role("button", name="Regenerate narration").focus()
    await page.keyboard.press("Space")
    await expect(card.get_by_role("list", name="Narration takes").get_by_role("listitem")).to_have_count(3)


async def test_a_dropped_stream_reconnects_with_last_event_id_and_catches_up(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("drop", 2))
    done = await svc.wait("drop")
    asked: list[str | None] = []
    browser.page.on("request", lambda r: asked.append(r.headers.get("last-event-id")) if "/events" in r.url else None)
    page = await browser.open(svc.url, "/#/t/drop")
    live = page.get_by_role("status", name="Live updates")
    await expect(live).to_have_text("live")
    await expect(scene(page, 1).get_by_role("status")).to_have_text("done")

    svc.service.hub.close_topic("drop")  # the connection drops (a restart, a proxy, a sleeping laptop)
    await expect(live).to_have_text("reconnecting…")
    status, _ = await svc.call("PATCH", "/api/topics/drop/scenes/1", body={"script": "Said while it was away."})
    assert status == 202
    await expect(scene(page, 1).locator(".subtitle")).to_have_text("Said while it was away.")
    await expect(scene(page, 1).get_by_label("Script")).to_have_value("Said while it was away.")
    await expect(live).to_have_text("live")
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
    # The first time from the state it fetched (no replay: issue #17.3), the second from the last event it had.
    assert asked == [str(done["last_event_id"])] * 2
