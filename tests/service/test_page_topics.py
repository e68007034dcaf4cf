"""The review page in Chromium, first page: the topics list, the "New topic" form (its 422 problems shown
next to the input, nothing created), the cards filling in live as the job runs, and the token asked once."""

from __future__ import annotations

import json
import re
from pathlib import Path

from page_helpers import expect
from service_helpers import offline, topic, with_comfy

from fakes.comfy_server import FakeComfyServer

SEED = re.compile(r"^seed \d+$")
SEEN_STATES = """() => {
  window.__seen = new Set();
  new MutationObserver(() => {
    document.querySelectorAll('.card [role=status]').forEach((s) => window.__seen.add(s.textContent));
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


async def test_a_topic_submitted_through_the_form_fills_in_live(start, browser, tmp_path: Path):
    async with FakeComfyServer(job_time=0.15) as comfy:
        comfy.accept_any_model = True
        svc = await start(with_comfy(tmp_path, comfy, tts="espeak"))
        page = await browser.open(svc.url)
        await expect(page.get_by_text("No topics yet.")).to_be_visible()

        # A bad file: every problem on its own line next to the input; nothing is created.
        form = page.get_by_role("region", name="New topic")
        await form.get_by_label("Scenes (JSON)").fill(json.dumps(
            {"topic": "broken", "scenes": [{"script": "", "image_prompt": "x"}, {"image_prompt": 3}]}))
        await form.get_by_role("button", name="Create topic").click()
        problems = form.get_by_role("list", name="Problems").get_by_role("listitem")
        await expect(problems).to_have_text(["scene 1: script is empty", "scene 2: script is missing",
                                             "scene 2: image_prompt must be a string, got int"])
        await expect(form.get_by_label("Scenes (JSON)")).to_have_attribute("aria-invalid", "true")
        assert browser.take_errors("status of 422") != []  # Chromium logs the refused request itself
        assert await svc.call("GET", "/api/topics") == (200, []) and not (svc.out / "broken").exists()

        # A good one, chosen as a file: the page goes to the topic, whose cards fill in as the job runs.
        scene_file = tmp_path / "three.json"
        scene_file.write_text(json.dumps(topic("live cards", 3)), encoding="utf-8")
        await form.get_by_label("Or choose a scene file").set_input_files(scene_file)
        await expect(form.get_by_label("Scenes (JSON)")).to_have_value(scene_file.read_text(encoding="utf-8"))
        await expect(problems).to_have_count(0)
        await page.evaluate(SEEN_STATES)
        await form.get_by_role("button", name="Create topic").click()
        await expect(page).to_have_url(f"{svc.url}/#/t/live-cards")
        await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
        state = await svc.wait("live-cards")
        for n in (1, 2, 3):
            card = page.get_by_role("region", name=f"Scene {n}", exact=True)
            await expect(card.get_by_role("status")).to_have_text("done")
            image = card.get_by_role("img", name=f"Scene {n} image", exact=True)
            await expect(image).to_be_visible()
            assert await image.evaluate("i => i.complete && i.naturalWidth > 0")
            await expect(card.get_by_text(f"live cards line {n}.", exact=True).last).to_be_visible()  # subtitles
            await expect(card.get_by_text("s of narration")).to_be_visible()
            await expect(card.get_by_text(SEED)).to_have_text(f"seed {state['scenes'][n - 1]['image_seed']}")
            assert await card.get_by_label(f"Scene {n} narration", exact=True).evaluate("a => a.src.includes('audio_scene_')")
        seen = set(await page.evaluate("[...window.__seen]"))  # what the cards said on the way
        # The page starts from the topic's answer (its states as of then) and follows live: it saw the work.
        assert any(s.startswith("making image") for s in seen), seen

        # Back to the list: the topic with its status.
        await page.get_by_role("link", name="← All topics").click()
        row = page.get_by_role("list", name="Topics").get_by_role("listitem")
        await expect(row).to_have_count(1)
        await expect(row.get_by_role("link", name="live cards")).to_be_visible()
        await expect(row.get_by_text("done", exact=True)).to_be_visible()


async def test_the_page_asks_for_the_token_once_and_media_load_with_it(start, browser, tmp_path: Path):
    token = "page-token-0123456789"
    svc = await start(offline(tmp_path, serve_token=token), headers={"Authorization": f"Bearer {token}"})
    await svc.submit(topic("locked", 1))
    await svc.wait("locked")
    page = await browser.open(svc.url)
    dialog = page.get_by_role("dialog", name="This service needs a token")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Token").fill("wrong")
    await dialog.get_by_role("button", name="Use token").click()
    await expect(dialog.get_by_text("That token was not accepted")).to_be_visible()
    await dialog.get_by_label("Token").fill(token)
    await dialog.get_by_label("Token").press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("link", name="locked")).to_be_visible()

    await page.reload()  # kept for the session: not asked again
    await page.get_by_role("link", name="locked").click()
    card = page.get_by_role("region", name="Scene 1", exact=True)
    await expect(card.get_by_role("status")).to_have_text("done")
    image = card.get_by_role("img", name="Scene 1 image", exact=True)
    await expect(image).to_be_visible()
    await page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=await image.element_handle())
    await expect(page.get_by_role("status", name="Live updates")).to_have_text("live")
    await expect(dialog).to_be_hidden()
    assert len(browser.take_errors("status of 401")) == 2  # the first request, then the wrong token
