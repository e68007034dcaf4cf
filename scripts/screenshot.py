"""Render the review page for the bundled Korean example and write ``docs/review-page.png``.

Starts ``sceneforge serve`` in this process (offline backends, a temporary output folder,
127.0.0.1 on a free port), submits ``examples/ai-shorts.ko.json``, waits for its job, renders a
preview, then opens the topic's page in Chromium (Debian's, through Playwright: set
``SCENEFORGE_CHROMIUM`` to use another) and takes a screenshot (1280 px wide) once every card
shows its image and the Korean font has loaded.

    python scripts/screenshot.py [--out docs/review-page.png] [--width 1280] [--height 1100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ai-shorts.ko.json"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


async def wait_idle(http: aiohttp.ClientSession, url: str, slug: str) -> dict:
    """Follow the topic's events until its job ends; its state."""
    async with http.get(f"{url}/api/topics/{quote(slug)}/events", params={"until": "idle"}) as resp:
        async for _ in resp.content:
            pass
    async with http.get(f"{url}/api/topics/{quote(slug)}") as resp:
        return await resp.json()


async def make_topic(url: str) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        async with http.post(f"{url}/api/topics", json=body) as resp:
            slug = (await resp.json())["slug"]
        state = await wait_idle(http, url, slug)
        assert state["status"] == "done", state.get("error")
        async with http.post(f"{url}/api/topics/{quote(slug)}/preview") as resp:
            assert resp.status == 202
        state = await wait_idle(http, url, slug)
        assert state["status"] == "done", state.get("error")
        return slug


async def shoot(url: str, slug: str, dest: Path, width: int, height: int) -> None:
    from playwright.async_api import async_playwright

    chromium = os.environ.get("SCENEFORGE_CHROMIUM") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        async with async_playwright() as pw:
            ctx = await pw.chromium.launch_persistent_context(
                profile, executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": width, "height": height}, device_scale_factor=1, locale="ko-KR",
                reduced_motion="reduce")  # the motion loops hold still on their first frame
            page = await ctx.new_page()
            page.on("console", lambda m: print(f"console {m.type}: {m.text}", file=sys.stderr) if m.type == "error" else None)
            page.on("pageerror", lambda e: print(f"page error: {e}", file=sys.stderr))
            await page.goto(f"{url}/#/t/{quote(slug, safe='')}")
            for n in range(1, 6):
                card = page.get_by_role("region", name=f"Scene {n}", exact=True)
                await card.get_by_role("status").filter(has_text="done").wait_for()
                await card.get_by_role("img", name=f"Scene {n} image", exact=True).wait_for()
            await page.wait_for_function("""() => [...document.images].filter(i => !i.hidden)
                                              .every(i => i.complete && i.naturalWidth > 0)""")
            await page.evaluate("document.fonts.ready")
            assert await page.evaluate("document.fonts.check('16px \"Sceneforge CJK\"', '요즘')"), "CJK font not loaded"
            await page.evaluate("document.activeElement && document.activeElement.blur()")
            await page.screenshot(path=str(dest))
            await ctx.close()


async def main(dest: Path, width: int, height: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from sceneforge.config import Settings
    from sceneforge.service.server import bind_socket, service_url, start_server
    from sceneforge.service.service import Service

    with tempfile.TemporaryDirectory() as out:
        settings = Settings(out_dir=Path(out), offline=True, stages=("audio", "image", "motion"), motion_enabled=True,
                            motion_length=17)
        sock = bind_socket("127.0.0.1", 0)
        server, task = await start_server(Service(settings), sock, signals=False)
        try:
            url = service_url(sock)
            await shoot(url, await make_topic(url), dest, width, height)
        finally:
            server.should_exit = True
            await task
    print(f"wrote {dest} ({dest.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "review-page.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1100)
    args = parser.parse_args()
    asyncio.run(main(args.out, args.width, args.height))
