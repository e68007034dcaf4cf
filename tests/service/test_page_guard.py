"""Issue #17, item 1, in a real browser: the review page works on 127.0.0.1 and on localhost, and a page
served from another origin (here only another port) can neither create, edit, cancel nor read a topic."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from page_helpers import expect
from service_helpers import offline, topic, with_comfy

from fakes.comfy_server import FakeComfyServer

# What a hostile page tries: requests a browser sends without a CORS preflight (text/plain, forms, a bare
# POST), requests that need one (JSON, PATCH), and a read. It reports what each fetch let it see.
ATTACK = """async (svc) => {
  const out = {};
  const attempt = async (name, url, init) => {
    try { const r = await fetch(url, init); out[name] = r.type === "opaque" ? "opaque" : await r.text(); }
    catch (e) { out[name] = "blocked"; }
  };
  const scenes = JSON.stringify({topic: "planted", scenes: [{script: "x", image_prompt: "y"}]});
  await attempt("create_plain", svc + "/api/topics", {method: "POST", mode: "no-cors", body: scenes,
                headers: {"Content-Type": "text/plain"}});
  await attempt("create_json", svc + "/api/topics", {method: "POST", body: scenes,
                headers: {"Content-Type": "application/json"}});
  await attempt("edit", svc + "/api/topics/victim/scenes/1", {method: "PATCH", body: '{"script": "owned"}',
                headers: {"Content-Type": "application/json"}});
  await attempt("cancel", svc + "/api/topics/victim/cancel", {method: "POST", mode: "no-cors"});
  await attempt("reroll", svc + "/api/topics/victim/scenes/1/regenerate", {method: "POST", mode: "no-cors",
                body: '{"stage": "image"}', headers: {"Content-Type": "text/plain"}});
  await attempt("read", svc + "/api/topics/victim", {});
  // A classic form post (a navigation, which no CORS rule stops) into a hidden frame.
  await new Promise((resolve) => {
    const frame = document.createElement("iframe"); frame.name = "sink"; frame.onload = resolve;
    document.body.append(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.action = svc + "/api/topics/victim/cancel"; form.target = "sink";
    form.enctype = "text/plain";
    const field = document.createElement("input"); field.name = '{"a":"'; field.value = '"}';
    form.append(field); document.body.append(form); form.submit();
  });
  return out;
}"""


async def _attacker_site() -> tuple[web.AppRunner, str]:
    app = web.Application()
    async def home(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>cats</title><p>cats", content_type="text/html")

    app.router.add_get("/", home)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_page_of_another_origin_cannot_create_edit_cancel_or_read(start, browser, tmp_path: Path):
    async with FakeComfyServer(job_time=30.0) as comfy:
        comfy.accept_any_model = True
        svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1))
        await svc.submit(topic("blocker", 1))
        await svc.submit(topic("victim", 2))  # queued behind the blocker: a cancel would land
        runner, evil = await _attacker_site()
        try:
            page = await browser.open(evil)
            seen = await page.evaluate(ATTACK, svc.url)
        finally:
            await runner.cleanup()
        assert seen["read"] == "blocked" and seen["create_json"] == "blocked" and seen["edit"] == "blocked", seen
        assert all(seen[k] == "opaque" for k in ("create_plain", "cancel", "reroll")), seen  # sent, never readable
        status, victim = await svc.call("GET", "/api/topics/victim")
        assert victim["status"] == "queued" and victim["scenes"][0]["script"] == "victim line 1."
        assert victim["job"]["kind"] == "run"
        assert (await svc.call("GET", "/api/topics/planted"))[0] == 404
        events = await svc.stream("victim", until_idle=False, stop=lambda e: e["kind"] == "status")
        assert all(e["kind"] == "status" and e["data"]["status"] == "queued" for e in events), events
        for slug in ("victim", "blocker"):
            assert (await svc.call("POST", f"/api/topics/{slug}/cancel"))[0] == 200
        # Chromium logs every refused request of the hostile page (403s, CORS refusals), as it should.
        refused = browser.take_errors(evil, svc.url)
        assert any("403 (Forbidden)" in e for e in refused) and any("CORS policy" in e for e in refused), refused


async def test_the_review_page_works_on_localhost_as_on_127_0_0_1(start, browser, tmp_path: Path):
    svc = await start(offline(tmp_path))
    for base in (svc.url, svc.url.replace("127.0.0.1", "localhost")):
        name = "by " + base.split("//")[1].split(":")[0]
        page = await browser.open(base)
        form = page.get_by_role("region", name="New topic")
        await form.get_by_label("Scenes (JSON)").fill(json.dumps(topic(name, 1)))
        await form.get_by_role("button", name="Create topic").click()
        card = page.get_by_role("region", name="Scene 1")
        await expect(card.get_by_role("status")).to_have_text("done")
        await expect(card.get_by_role("img", name="Scene 1 image", exact=True)).to_be_visible()
