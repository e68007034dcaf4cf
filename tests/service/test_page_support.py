"""What the service adds for the review page: the CJK web font (cached), the token as a cookie for reading
files (media elements send no headers; never for changes or the API), and the preview's URLs in the topic."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp
from service_helpers import offline, topic

from sceneforge.fonts import cjk_font_path
from sceneforge.service.fonts import FONT_URL

TOKEN = "tok-page-0123456789abcdef"


async def test_the_cjk_font_is_served_with_caching_headers_and_no_token(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_token=TOKEN))
    async with aiohttp.ClientSession() as anon:
        async with anon.head(svc.url + FONT_URL) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "font/otf"
            assert int(resp.headers["Content-Length"]) == cjk_font_path().stat().st_size
        async with anon.get(svc.url + FONT_URL, headers={"Range": "bytes=0-3"}) as resp:
            assert resp.status == 206 and await resp.read() == cjk_font_path().read_bytes()[:4]  # "OTTO"
            assert resp.headers["Cache-Control"] == "public, max-age=604800" and resp.headers["ETag"]
        async with anon.get(svc.url + "/") as resp:
            page = await resp.text()
        async with anon.get(svc.url + "/style.css") as resp:
            assert resp.status == 200 and FONT_URL in await resp.text()
    assert '<script type="module" src="/js/app.js"></script>' in page


async def test_a_token_cookie_reads_files_and_nothing_else(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    await svc.submit(topic("cookie jar", 1))
    state = await svc.wait("cookie-jar")
    image = state["scenes"][0]["urls"]["image"]
    good = {"Cookie": f"other=1; sceneforge_token={quote(TOKEN)}"}
    async with aiohttp.ClientSession() as anon:
        async with anon.get(svc.url + image, headers=good) as resp:
            assert resp.status == 200 and (await resp.read()).startswith(b"\x89PNG")
        async with anon.head(svc.url + image, headers=good) as resp:
            assert resp.status == 200
        async with anon.get(svc.url + image, headers={"Cookie": "sceneforge_token=wrong"}) as resp:
            assert resp.status == 401
        for method, path in (("GET", "/api/topics"), ("GET", "/api/topics/cookie-jar/events"),
                             ("POST", "/api/topics/cookie-jar/cancel"), ("DELETE", "/api/topics/cookie-jar"),
                             ("POST", "/files/cookie-jar/image_scene_1.png")):
            async with anon.request(method, svc.url + path, headers=good) as resp:
                assert resp.status == 401, (method, path)
    assert (svc.out / "cookie-jar" / "scenes.json").is_file()


async def test_the_topic_names_its_preview_once_made(start, tmp_path: Path):
    svc = await start()
    await svc.submit(topic("shown", 1))
    done = await svc.wait("shown")
    assert done["preview_urls"] == {}
    await svc.call("POST", "/api/topics/shown/preview")
    state = await svc.wait("shown")
    assert state["preview_urls"] == {"preview": "/files/shown/preview.mp4",
                                     "contact_sheet": "/files/shown/contact_sheet.png"}


def test_a_reference_url_is_given_only_for_an_upload_of_the_topic(tmp_path: Path):
    from sceneforge.layout import TopicLayout
    from sceneforge.service.views import reference_url

    layout = TopicLayout(tmp_path, "hero")
    (layout.root / "references").mkdir(parents=True)
    (layout.root / "references" / "ab12.png").write_bytes(b"png")
    (tmp_path / "ab12.png").write_bytes(b"png")
    for value in ("references/ab12.png", str(layout.root / "references" / "ab12.png")):
        assert reference_url(layout, value) == "/files/hero/references/ab12.png"
    for value in (str(tmp_path / "ab12.png"), "references/missing.png", "../ab12.png", "/etc/passwd", "", None, 3):
        assert reference_url(layout, value) is None, value
