"""``/files/{slug}/{path}``: assets with their content types and Range, and nothing else, however asked."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from service_helpers import Svc, offline, topic

from sceneforge.service.files import relative_paths, relative_value, safe_file


async def raw_status(svc: Svc, path: str) -> int:
    """GET ``path`` exactly as written (no client normalizes ``..`` or ``%2e`` away)."""
    url = urlsplit(svc.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.fixture
async def svc(start, tmp_path: Path) -> Svc:
    svc = await start(offline(tmp_path, stages=("audio", "image", "motion"), motion_enabled=True, motion_length=5))
    await svc.submit(topic("files", 1))
    await svc.submit(topic("other", 1))
    await svc.wait("files")
    await svc.wait("other")
    return svc


async def test_assets_are_served_with_their_content_types(svc):
    root = svc.out / "files"
    for name, ctype in (("audio_scene_1.mp3", "audio/mpeg"), ("audio_scene_1.srt", "application/x-subrip"),
                        ("image_scene_1.png", "image/png"), ("motion_scene_1/frame_0003.png", "image/png"),
                        ("scenes.json", "application/json")):
        async with svc.http.get(f"{svc.url}/files/files/{name}") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].split(";")[0] == ctype, name
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            expected = (root / name).read_bytes()
            if name == "scenes.json":  # served with its paths relative to the output folder (#17.10)
                expected = expected.replace(json.dumps(str(svc.out) + "/")[1:-1].encode(), b"")
            assert await resp.read() == expected


async def test_range_requests_get_206_and_exactly_those_bytes(svc):
    data = (svc.out / "files" / "audio_scene_1.mp3").read_bytes()
    url = f"{svc.url}/files/files/audio_scene_1.mp3"
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100, len(data) - 1),
                               ("bytes=-64", len(data) - 64, len(data) - 1)):
        async with svc.http.get(url, headers={"Range": header}) as resp:
            assert resp.status == 206, header
            assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
            assert await resp.read() == data[start:end + 1]
    async with svc.http.get(url) as resp:
        assert resp.status == 200 and resp.headers["Accept-Ranges"] == "bytes"
    async with svc.http.head(url) as resp:  # players ask the size first
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(data) and not await resp.read()
    async with svc.http.get(url, headers={"Range": f"bytes={len(data) + 10}-"}) as resp:
        assert resp.status == 416


async def test_traversal_and_internal_files_are_404(svc, tmp_path: Path):
    (tmp_path / "secret.txt").write_text("secret")
    bad = [
        "/files/files/../other/scenes.json", "/files/files/%2e%2e/other/scenes.json",
        "/files/files/..%2fother%2fscenes.json", "/files/files/..%2F..%2F..%2Fsecret.txt",
        "/files/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt", "/files/..%2fsecret.txt/x",
        "/files/%2e%2e/secret.txt", "/files/files//etc/passwd", "/files/files/%2Fetc%2Fpasswd",
        "/files/files/....//scenes.json", "/files/files/.%2e/other/scenes.json", "/files/files/a%00b",
        "/files/files/.sceneforge/run.lock", "/files/files/.sceneforge/service/status.json",
        "/files/files/.sceneforge/service/events.jsonl", "/files/files/.sceneforge/audio/scene_1.json",
        "/files/files/.sceneforge/takes/../service/status.json", "/files/files/motion_scene_1",
        "/files/files/", "/files/files/missing.png", "/files/nope/scenes.json", "/files/.sceneforge/x",
    ]
    for path in bad:
        assert await raw_status(svc, path) == 404, path
    assert await raw_status(svc, "/files/files/scenes.json") == 200


async def test_links_never_lead_out_of_the_topic_or_into_its_state(svc, tmp_path: Path):
    root = svc.out / "files"
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "leak.png")
    os.symlink(root / ".sceneforge" / "service" / "status.json", root / "status.json")
    os.symlink(svc.out / "other", root / "elsewhere")
    (root / ".image_scene_9.png.abcd.part").write_bytes(b"half")
    for name in ("leak.png", "status.json", "elsewhere/scenes.json", ".image_scene_9.png.abcd.part"):
        assert (await svc.call("GET", f"/files/files/{name}"))[0] == 404, name
    assert safe_file(svc.out, "files", "image_scene_1.png") == (root / "image_scene_1.png").resolve()
    assert safe_file(svc.out, "files", "/etc/passwd") is None and safe_file(svc.out, "..", "x") is None


async def test_take_snapshots_are_served(svc):
    await svc.call("POST", "/api/topics/files/scenes/1/regenerate", body={"stage": "image"})
    await svc.wait("files")
    status, takes = await svc.call("GET", "/api/topics/files/scenes/1/takes")
    old = takes["image"][0]
    assert not old["current"] and "/.sceneforge/takes/image/scene_1/" in old["url"]
    async with svc.http.get(svc.url + old["url"]) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")
    old_motion = takes["motion"][0]
    assert len(old_motion["urls"]) == 5
    for url in old_motion["urls"]:
        assert (await svc.call("GET", url))[0] == 200


def test_paths_in_values_are_said_relative_to_the_output_folder_resolved_once(tmp_path: Path, monkeypatch):
    out = tmp_path / "sortie é"  # a name JSON would escape without ensure_ascii=False
    (out / "t").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(out)
    value = {"reason": f"cannot read {out}/t/a.png", "paths": [f"{link}/t/b.png", 3, None], "n": 1}
    assert relative_value(value, link) == {"reason": "cannot read t/a.png", "paths": ["t/b.png", 3, None], "n": 1}
    resolved: list[Path] = []
    real = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **kw: resolved.append(self) or real(self, *a, **kw))
    for _ in range(50):
        assert relative_paths(json.dumps(f"{out}/t/x", ensure_ascii=False)[1:-1], link, json_escaped=True) == "t/x"
    assert resolved == []  # the folder's prefixes were worked out once, not per call
