"""The review page in Chromium, a topic: fix one scene (Save remakes only what the edit invalidates, mtimes
checked), re-roll one (a new image and seed, then a typed seed), go back to an earlier take, change one
scene's voice, upload a reference, cancel a running job, render the preview."""

from __future__ import annotations

import re
from pathlib import Path

from page_helpers import expect, png_bytes
from service_helpers import mtimes, offline, topic, with_comfy

from fakes.comfy_server import FakeComfyServer

SEED = re.compile(r"^seed \d+$")


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {k for k in after if after[k] != before.get(k)} | (set(before) - set(after))


def scene(page, n: int):
    return page.get_by_role("region", name=f"Scene {n}", exact=True)


async def open_topic(browser, svc, slug: str):
    """The topic's page once every card says done."""
    page = await browser.open(svc.url, f"/#/t/{slug}")
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
    await expect(page.get_by_role("status", name="Live updates")).to_have_text("live")
    return page


async def job_done(page, n: int, stage: str) -> None:
    """Wait until scene n's ``stage`` file was re-made live (its URL got a new version) and the job ended."""
    if stage == "audio":
        await expect(scene(page, n).get_by_label(f"Scene {n} narration", exact=True)).to_have_attribute(
            "src", re.compile(r"\?v=\d+$"))
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")


async def test_save_an_edited_script_remakes_only_that_scenes_narration(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("fix one", 3))
    await svc.wait("fix-one")
    page = await open_topic(browser, svc, "fix-one")
    before = mtimes(svc.out / "fix-one")

    card = scene(page, 2)
    await card.get_by_label("Script").fill("A better second line.")
    await card.get_by_role("button", name="Save").click()
    await expect(card.locator(".subtitle")).to_have_text("A better second line.")
    await job_done(page, 2, "audio")
    assert changed(before, mtimes(svc.out / "fix-one")) == {"audio_scene_2.mp3", "audio_scene_2.srt"}
    await expect(card.get_by_label("Script")).to_have_value("A better second line.")
    await expect(scene(page, 1).get_by_label("Script")).to_have_value("fix one line 1.")
    takes = card.get_by_role("list", name="Narration takes").get_by_role("listitem")
    await expect(takes).to_have_count(2)

    # Nothing changed: said on the card, nothing sent.
    await scene(page, 1).get_by_role("button", name="Save").click()
    await expect(scene(page, 1).get_by_role("alert")).to_have_text("Nothing changed: edit a field first.")


async def test_regenerate_an_image_then_with_a_typed_seed_then_use_the_first_take(start, browser, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as comfy:
        comfy.accept_any_model = True
        svc = await start(with_comfy(tmp_path, comfy, tts="espeak"))
        await svc.submit(topic("roll three", 3))
        first = await svc.wait("roll-three")
        page = await open_topic(browser, svc, "roll-three")
        png = svc.out / "roll-three" / "image_scene_3.png"
        old_png, old_seed = png.read_bytes(), first["scenes"][2]["image_seed"]
        before = mtimes(svc.out / "roll-three")
        card = scene(page, 3)
        image = card.get_by_role("img", name="Scene 3 image", exact=True)
        await expect(card.get_by_text(SEED)).to_have_text(f"seed {old_seed}")

        await card.get_by_role("button", name="Regenerate image").click()
        await expect(card.get_by_text(SEED)).not_to_have_text(f"seed {old_seed}")
        await job_done(page, 3, "image")
        assert png.read_bytes() != old_png
        assert changed(before, mtimes(svc.out / "roll-three")) == {"image_scene_3.png"}
        await expect(image).to_have_attribute("src", re.compile(r"image_scene_3\.png\?v=\d+$"))
        assert await image.evaluate("i => i.complete && i.naturalWidth > 0")

        await card.get_by_label("Seed for the next re-roll").fill("4242")
        await card.get_by_role("button", name="Regenerate image").click()
        await expect(card.get_by_text(SEED)).to_have_text("seed 4242")
        await job_done(page, 3, "image")
        await expect(card.get_by_label("Seed for the next re-roll")).to_have_value("")
        assert comfy.jobs[-1]["graph"]["3"]["inputs"]["seed"] == 4242

        takes = card.get_by_role("list", name="Image takes").get_by_role("listitem")
        await expect(takes).to_have_count(3)
        await expect(takes.last).to_contain_text("in use")
        src = await image.get_attribute("src")
        await takes.first.get_by_role("button", name="Use this take").click()
        await expect(card.get_by_text(SEED)).to_have_text(f"seed {old_seed}")
        await expect(takes.first).to_contain_text("in use")
        await expect(image).not_to_have_attribute("src", src or "")
        assert png.read_bytes() == old_png and len(comfy.jobs) == 5  # a take comes back without a job
        assert await image.evaluate("i => i.complete && i.naturalWidth > 0")
        await expect(scene(page, 2).get_by_role("list", name="Image takes").get_by_role("listitem")).to_have_count(1)


async def test_a_voice_chosen_in_the_picker_re_records_only_that_scene(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("two voices", 3))
    await svc.wait("two-voices")
    page = await open_topic(browser, svc, "two-voices")
    before = mtimes(svc.out / "two-voices")
    voice = scene(page, 2).get_by_label("Voice")
    suggestions = await voice.evaluate("v => [...v.list.options].map(o => o.value)")
    assert {"ko-KR-SunHiNeural", "en-US-AriaNeural", "en"} <= set(suggestions)
    await voice.fill("en-US-AriaNeural")
    await scene(page, 2).get_by_role("button", name="Save").click()
    await job_done(page, 2, "audio")
    # The storyboard card prints the scene's voice, so its draft image is remade too: scene 2 only.
    assert changed(before, mtimes(svc.out / "two-voices")) == {"audio_scene_2.mp3", "audio_scene_2.srt",
                                                               "image_scene_2.png"}
    state = (await svc.call("GET", "/api/topics/two-voices"))[1]
    assert [s.get("voice") for s in state["scenes"]] == [None, "en-US-AriaNeural", None]
    await expect(voice).to_have_value("en-US-AriaNeural")
    # The picker now suggests the topic's own voices first.
    assert (await voice.evaluate("v => v.list.options[0].value")) == "en-US-AriaNeural"


async def test_an_uploaded_reference_shows_on_its_card(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    await svc.submit(topic("hero", 2))
    await svc.wait("hero")
    page = await open_topic(browser, svc, "hero")
    card = scene(page, 1)
    picture = tmp_path / "hero.png"
    picture.write_bytes(png_bytes((220, 40, 40)))
    await card.get_by_label("Reference image").set_input_files(picture)
    shown = card.get_by_role("img", name="Scene 1 reference image")
    await expect(shown).to_be_visible()
    await page.wait_for_function("i => i.complete && i.naturalWidth === 48", arg=await shown.element_handle())
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
    state = (await svc.call("GET", "/api/topics/hero"))[1]
    value = state["scenes"][0]["reference_image"]
    assert (svc.out / "hero" / value).read_bytes() == picture.read_bytes() and "reference_image" not in state["scenes"][1]
    await expect(scene(page, 2).get_by_role("img", name="Scene 2 reference image")).to_be_hidden()

    await card.get_by_role("button", name="Remove reference").click()
    await expect(shown).to_be_hidden()
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")
    assert "reference_image" not in (await svc.call("GET", "/api/topics/hero"))[1]["scenes"][0]


async def test_cancel_stops_the_running_job_and_the_cards_say_so(start, browser, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as comfy:
        comfy.accept_any_model = True
        comfy.fault("hang")  # a job runs until it is interrupted
        svc = await start(with_comfy(tmp_path, comfy, tts="espeak"))
        await svc.submit(topic("stop me", 2))
        page = await browser.open(svc.url, "/#/t/stop-me")
        head = page.get_by_role("region", name="Topic")
        await expect(page.get_by_role("status").filter(has_text=re.compile("^making .*image"))).not_to_have_count(0)
        await expect(head.get_by_role("button", name="Render preview")).to_be_disabled()
        await expect(scene(page, 1).get_by_role("button", name="Save")).to_be_disabled()
        await head.get_by_role("button", name="Cancel").click()
        await expect(head.get_by_role("status")).to_have_text("cancelled")
        await expect(page.get_by_role("status").filter(has_text="cancelled")).not_to_have_count(0)
        await expect(head.get_by_role("button", name="Cancel")).to_be_disabled()
        await expect(scene(page, 1).get_by_role("button", name="Save")).to_be_enabled()
        assert comfy.interrupts and comfy.queue_deletes


async def test_motion_loops_and_render_preview_shows_the_video_and_the_contact_sheet(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path, stages=("audio", "image", "motion"), motion_enabled=True, motion_length=5))
    await svc.submit(topic("show me", 2))
    await svc.wait("show-me")
    page = await open_topic(browser, svc, "show-me")
    motion = scene(page, 2).get_by_role("img", name="Scene 2 motion", exact=True)
    await expect(motion).to_have_attribute("src", re.compile(r"motion_scene_2/frame_0001\.png"))
    await expect(motion).to_have_attribute("src", re.compile(r"motion_scene_2/frame_0003\.png"))  # it plays
    await expect(scene(page, 2).get_by_role("button", name="Regenerate motion")).to_be_visible()
    await expect(scene(page, 2).get_by_text(re.compile(r"^motion seed \d+$"))).to_be_visible()
    preview = page.get_by_role("region", name="Preview")
    await expect(preview.get_by_text("No preview yet")).to_be_visible()
    await page.get_by_role("button", name="Render preview").click()
    video = preview.get_by_label("Preview video")
    await expect(video).to_be_visible()
    await expect(video).to_have_attribute("src", re.compile(r"/files/show-me/preview\.mp4\?v=\d+$"))
    await page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=await video.element_handle())
    sheet = preview.get_by_role("img", name="Contact sheet")
    await page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=await sheet.element_handle())
    await expect(page.get_by_role("region", name="Topic").get_by_role("status")).to_have_text("done")


async def test_a_failed_scene_says_why_on_its_card(start, browser, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as comfy:
        comfy.accept_any_model = True
        comfy.fault("execution_error", exception_message="CUDA out of memory")
        svc = await start(with_comfy(tmp_path, comfy, tts="espeak", image_retry={"max_attempts": 1}))
        await svc.submit(topic("broken gpu", 1))
        page = await browser.open(svc.url, "/#/t/broken-gpu")
        head = page.get_by_role("region", name="Topic")
        await expect(head.get_by_role("status")).to_have_text("failed")
        await expect(scene(page, 1).get_by_role("status")).to_have_text(re.compile(r"^failed \(image\): .*CUDA out of memory"))
        await expect(head.get_by_role("alert")).to_contain_text("The last job failed: ")
        await page.reload()  # the reason is worked out again from the kept events
        await expect(scene(page, 1).get_by_role("status")).to_have_text(re.compile(r"^failed \(image\): .*CUDA out of memory"))
