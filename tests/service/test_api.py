"""The routes over the offline backends: submit, follow, read the state, errors with a JSON ``detail``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from service_helpers import kinds, offline, statuses, topic, with_comfy

from sceneforge import __version__
from sceneforge.service.options import OPTIONS


async def test_health(start):
    svc = await start()
    assert await svc.call("GET", "/api/health") == (200, {"status": "ok", "version": __version__})


async def test_submit_runs_the_topic_and_its_state_has_every_scene_with_urls(start):
    svc = await start()
    accepted = await svc.submit(topic("Hello World", 2))
    assert accepted == {"slug": "hello-world", "status": "queued"}
    state = await svc.wait("hello-world")
    assert state["status"] == "done" and state["error"] is None and state["topic"] == "Hello World"
    assert state["progress"] == {"done": 4, "total": 4}  # 2 scenes x (audio, image)
    assert [s["n"] for s in state["scenes"]] == [1, 2]
    first = state["scenes"][0]
    assert first["script"] == "Hello World line 1." and first["audio_duration"] > 0
    assert first["urls"] == {"audio": "/files/hello-world/audio_scene_1.mp3",
                             "subtitle": "/files/hello-world/audio_scene_1.srt",
                             "image": "/files/hello-world/image_scene_1.png"}
    status, png = await svc.call("GET", first["urls"]["image"])
    assert status == 200 and png.startswith(b"\x89PNG")
    status, listing = await svc.call("GET", "/api/topics")
    assert status == 200
    assert listing == [{"slug": "hello-world", "topic": "Hello World", "status": "done",
                        "updated_at": state["updated_at"], "progress": {"done": 4, "total": 4}, "error": None}]


async def test_events_name_topic_stage_and_scene_and_status_changes_come_in_order(start):
    svc = await start()
    await svc.submit(topic("alpha", 2))
    events = await svc.stream("alpha")
    assert statuses(events) == ["queued", "running", "done"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["slug"] == "alpha" and e["topic"] == "alpha" for e in events)
    for e in events:
        if e["kind"].startswith("scene_"):
            assert e["stage"] in ("audio", "image") and e["scene"] in (1, 2), e
    assert kinds(events).count("scene_done") == 4 and "run_done" in kinds(events)


async def test_options_choose_the_run_settings_and_are_kept_for_later_jobs(start):
    svc = await start()
    await svc.submit({**topic("opts", 1), "options": {"stages": ["audio"], "rate": 1.5}})
    state = await svc.wait("opts")
    assert state["status"] == "done" and state["options"] == {"stages": ["audio"], "rate": 1.5}
    assert "audio" in state["scenes"][0]["urls"] and "image" not in state["scenes"][0]["urls"]
    assert not (svc.out / "opts" / "image_scene_1.png").exists()


async def test_bad_options_are_422_naming_each_option_and_nothing_is_written(start):
    svc = await start()
    status, body = await svc.call("POST", "/api/topics", body={**topic("bad-opts", 1), "options": {
        "seed": -1, "colour": "red", "workflow": "/etc/passwd", "stages": ["audio", "sound"]}})
    assert status == 422
    problems = body["problems"]
    assert len(problems) == 4 and body["detail"] == "4 problems in the input"
    assert any(p.startswith("options.colour: unknown option") for p in problems)
    assert any(p.startswith("options.workflow: '/etc/passwd' is not a bundled image workflow") for p in problems)
    assert "options.seed: Input should be greater than or equal to 0" in problems
    assert any(p.startswith("options.stages: unknown stage(s) sound") for p in problems)
    status, body = await svc.call("POST", "/api/topics", body={**topic("bad-opts", 1), "options": {"seed": -1}})
    assert status == 422 and body["problems"] == ["options.seed: Input should be greater than or equal to 0"]
    status, body = await svc.call("POST", "/api/topics", body={**topic("bad-opts", 1),
                                                               "options": {"stages": ["sound"]}})
    assert status == 422 and body["problems"][0].startswith("options.stages: unknown stage(s) sound")
    assert not (svc.out / "bad-opts").exists()
    assert "webhook_url" not in OPTIONS and "out_dir" not in OPTIONS.values() and "comfy_urls" not in OPTIONS.values()


async def test_options_cannot_reach_outside_out(start, tmp_path: Path):
    svc = await start()
    for options in ({"out_dir": str(tmp_path / "elsewhere")}, {"comfy_urls": ["http://evil"]},
                    {"motion_workflow": "../../x.json"}, {"webhook_url": "file:///etc/passwd"}):
        status, body = await svc.call("POST", "/api/topics", body={**topic("t", 1), "options": options})
        assert status == 422, (options, body)
    assert not (tmp_path / "elsewhere").exists() and not (svc.out / "t").exists()


async def test_input_asset_paths_are_never_taken_or_read(start, tmp_path: Path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    svc = await start()
    scene = {"script": "Hi.", "image_prompt": "p", "image_path": str(secret), "audio_path": "/etc/passwd"}
    await svc.submit({"topic": "paths", "scenes": [scene]})
    state = await svc.wait("paths")
    assert state["scenes"][0]["image_path"] == "paths/image_scene_1.png"  # relative to the output folder (#17.10)
    assert state["scenes"][0]["audio_path"] == "paths/audio_scene_1.mp3"
    assert secret.read_bytes() == b"not yours"


async def test_unknown_topic_scene_and_route_are_404_with_a_detail(start):
    svc = await start()
    await svc.submit(topic("known", 2))
    await svc.wait("known")
    for method, path in (("GET", "/api/topics/nope"), ("DELETE", "/api/topics/nope"),
                         ("POST", "/api/topics/nope/cancel"), ("GET", "/api/topics/nope/events"),
                         ("GET", "/api/topics/known/scenes/3/takes"), ("GET", "/api/topics/known/scenes/0/takes"),
                         ("GET", "/api/topics/known/preview/x"), ("GET", "/api/nothing-here")):
        status, body = await svc.call(method, path)
        assert status == 404 and isinstance(body["detail"], str), (method, path, body)
    status, body = await svc.call("PATCH", "/api/topics/known/scenes/9", body={"script": "x"})
    assert status == 404 and body["detail"] == "topic 'known' has scenes 1 to 2, not 9"
    status, body = await svc.call("POST", "/api/topics/known/scenes/1/takes/image/nope/restore")
    assert status == 404 and "no image take 'nope'" in body["detail"]


async def test_invalid_json_is_400_for_every_body(start):
    svc = await start()
    await svc.submit(topic("j", 1))
    await svc.wait("j")
    for method, path in (("POST", "/api/topics"), ("PATCH", "/api/topics/j/scenes/1"),
                         ("POST", "/api/topics/j/scenes/1/regenerate")):
        status, body = await svc.call(method, path, data=b'{"topic": "j", "scenes": [',
                                      headers={"Content-Type": "application/json"})
        assert status == 400 and body["detail"].startswith("not valid JSON"), (path, body)


async def test_a_body_over_the_limit_is_413_declared_or_streamed(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_max_body=2048))
    status, body = await svc.call("POST", "/api/topics", data=b" " * 4096)
    assert status == 413 and "larger than 2048 bytes" in body["detail"]

    async def chunks():
        for _ in range(8):
            yield b" " * 1024  # no Content-Length: chunked

    async with svc.http.post(svc.url + "/api/topics", data=chunks(), headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413 and "larger than 2048" in (await resp.json())["detail"]
    assert not any(svc.out.iterdir())


async def test_resubmitting_a_queued_or_running_topic_is_409(start, comfy, tmp_path: Path):
    comfy.gate = asyncio.Event()  # "first" holds the only worker until the gate opens
    svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1))
    await svc.submit(topic("first", 1))
    await svc.submit(topic("second", 1))
    status, body = await svc.call("POST", "/api/topics", body=topic("second", 1))
    assert status == 409 and body["detail"] == "topic 'second' is queued; wait for its job to end or cancel it"
    await svc.stream("first", until_idle=False, stop=lambda e: e["kind"] == "job_queued")  # on the GPU
    status, body = await svc.call("POST", "/api/topics", body=topic("first", 1))
    assert status == 409 and body["detail"] == "topic 'first' is running; wait for its job to end or cancel it"
    comfy.gate.set()
    await svc.wait("first")
    await svc.wait("second")


async def test_a_topic_folder_of_another_topic_is_409(start):
    svc = await start()
    await svc.submit(topic("C++ tips", 1))
    await svc.wait("c-tips")
    status, body = await svc.call("POST", "/api/topics", body=topic("C tips", 1))
    assert status == 409 and "holds the topic 'C++ tips'" in body["detail"]


async def test_delete_removes_the_topic_and_is_409_while_it_runs(start, comfy, tmp_path: Path):
    comfy.gate = asyncio.Event()  # "keep" holds the only worker until the gate opens
    svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1))
    await svc.submit(topic("keep", 1))
    await svc.submit(topic("gone", 1))
    status, body = await svc.call("DELETE", "/api/topics/gone")
    assert status == 409 and "is queued" in body["detail"]
    await svc.stream("keep", until_idle=False, stop=lambda e: e["kind"] == "job_queued")  # on the GPU
    status, body = await svc.call("DELETE", "/api/topics/keep")
    assert status == 409 and "is running" in body["detail"]
    comfy.gate.set()
    await svc.wait("keep")
    await svc.wait("gone")
    assert await svc.call("DELETE", "/api/topics/gone") == (200, {"slug": "gone", "deleted": True})
    assert not (svc.out / "gone").exists() and (svc.out / "keep" / "scenes.json").is_file()
    assert [t["slug"] for t in (await svc.call("GET", "/api/topics"))[1]] == ["keep"]
    assert (await svc.call("GET", "/api/topics/gone"))[0] == 404
    assert [p.name for p in svc.out.iterdir() if p.name != ".sceneforge-service"] == ["keep"]  # the trash is gone too


async def test_topics_made_by_the_command_line_are_listed(start, tmp_path: Path):
    from sceneforge.pipeline import generate_assets

    generate_assets(topic("from cli", 1), offline(tmp_path))
    svc = await start()
    status, listing = await svc.call("GET", "/api/topics")
    assert status == 200 and [(t["slug"], t["status"]) for t in listing] == [("from-cli", "done")]
    status, state = await svc.call("GET", "/api/topics/from-cli")
    assert status == 200 and state["scenes"][0]["urls"]["audio"] == "/files/from-cli/audio_scene_1.mp3"


async def test_openapi_and_the_api_page_work_without_internet(start):
    svc = await start()
    status, doc = await svc.call("GET", "/openapi.json")
    assert status == 200 and doc["info"]["title"] == "sceneforge"
    paths = set(doc["paths"])
    assert {"/api/health", "/api/topics", "/api/topics/{slug}", "/api/topics/{slug}/scenes/{n}",
            "/api/topics/{slug}/scenes/{n}/regenerate", "/api/topics/{slug}/scenes/{n}/takes",
            "/api/topics/{slug}/scenes/{n}/takes/{stage}/{take_id}/restore", "/api/topics/{slug}/cancel",
            "/api/topics/{slug}/preview", "/api/topics/{slug}/events", "/files/{slug}/{path}"} <= paths
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    status, page = await svc.call("GET", "/docs")
    html = page.decode()
    assert status == 200 and "swagger-ui" in html and "/openapi.json" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        status, data = await svc.call("GET", f"/docs/assets/{asset}")
        assert status == 200 and len(data) > 100_000


async def test_the_static_page_is_served_at_the_root(start):
    svc = await start()
    status, page = await svc.call("GET", "/")
    assert status == 200 and b"sceneforge" in page and b"/docs" in page


async def test_cors_is_off_by_default_and_on_for_configured_origins(start, tmp_path: Path):
    svc = await start()
    async with svc.http.get(svc.url + "/api/health", headers={"Origin": "http://page.example"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
    other = await start(offline(tmp_path / "b", serve_cors_origins=("http://page.example",)))
    async with other.http.get(other.url + "/api/health", headers={"Origin": "http://page.example"}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "http://page.example"
    async with other.http.options(other.url + "/api/topics", headers={
            "Origin": "http://page.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"}) as resp:
        assert resp.status == 200 and "POST" in resp.headers["Access-Control-Allow-Methods"]


def test_state_files_are_plain_json(tmp_path: Path):
    """status.json is what a person (or another tool) can read: a quick look at its keys."""
    from sceneforge.service.models import JobSpec, JobStatus
    from sceneforge.service.store import TopicRecord, TopicStore

    store = TopicStore(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "scenes.json").write_text(json.dumps(topic("x", 1)))
    rec = TopicRecord("x", "x", JobStatus.RUNNING, job=JobSpec("regenerate", 2, "image", "t1"))
    store.save(rec)
    raw = json.loads((tmp_path / "x" / ".sceneforge" / "service" / "status.json").read_text())
    assert raw["status"] == "running" and raw["job"] == {"kind": "regenerate", "scene": 2, "stage": "image",
                                                          "take_before": "t1"}
    loaded = store.load("x")
    assert loaded is not None and loaded.status is JobStatus.RUNNING and loaded.job == rec.job


async def test_urls_follow_the_files_on_disk(start):
    svc = await start()
    await svc.submit(topic("disk", 1))
    state = await svc.wait("disk")
    assert "image" in state["scenes"][0]["urls"]
    assert (await svc.call("GET", "/api/topics/disk"))[1] == state  # the same answer (from the cache) ...
    (svc.out / "disk" / "image_scene_1.png").unlink()
    _, after = await svc.call("GET", "/api/topics/disk")
    assert "image" not in after["scenes"][0]["urls"] and "audio" in after["scenes"][0]["urls"]  # ... until it changed
