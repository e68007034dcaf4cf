"""Scene-level control through the service (issue #14): voices per scene, uploaded reference images,
bundled workflows only; nothing a client names can make the service read a file of its machine."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from service_helpers import topic, with_comfy

from fakes.comfy_server import FakeComfyServer
from sceneforge.comfy.backend import upload_name


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "PNG")
    return buf.getvalue()


PNG = {"Content-Type": "image/png"}


async def test_an_uploaded_reference_is_set_on_the_workflows_reference_node(start, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as srv:
        srv.accept_any_model = True
        svc = await start(with_comfy(tmp_path, srv, workflow="flux-kontext", width=64, height=112, stages=("image",)))
        # Before the topic exists: its first submission can name the upload.
        status, body = await svc.call("POST", "/api/topics/hero/references", data=png((200, 20, 20)),
                                      headers={"Content-Type": "image/png"})
        assert status == 201, body
        assert body["reference_image"].startswith("references/") and body["url"].startswith("/files/hero/references/")
        await svc.submit(topic("hero", 2, reference_image=body["reference_image"]))
        state = await svc.wait("hero")
        assert state["status"] == "done", state
        ref = svc.out / "hero" / body["reference_image"]
        assert {j["graph"]["142"]["inputs"]["image"] for j in srv.jobs} == {upload_name(ref)}
        status, served = await svc.call("GET", body["url"])
        assert status == 200 and served == ref.read_bytes()

        # A scene of its own character: upload, PATCH, and only that scene is remade.
        status, other = await svc.call("POST", "/api/topics/hero/references", data=png((20, 20, 200)), headers=PNG)
        status, _ = await svc.call("PATCH", "/api/topics/hero/scenes/2", body={"reference_image": other["reference_image"]})
        assert status == 202
        state = await svc.wait("hero")
        assert state["status"] == "done" and len(srv.jobs) == 3
        assert srv.jobs[-1]["graph"]["142"]["inputs"]["image"] == upload_name(svc.out / "hero" / other["reference_image"])


async def test_paths_of_the_service_machine_are_refused(start, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as srv:
        svc = await start(with_comfy(tmp_path, srv, workflow="flux-kontext", stages=("image",)))
        secret = tmp_path / "secret.png"
        secret.write_bytes(png((1, 2, 3)))
        for bad in (str(secret), "../secret.png", "references/../../secret.png", "/etc/passwd"):
            status, body = await svc.call("POST", "/api/topics", body=topic("steal", 1, reference_image=bad))
            assert status == 422 and "uploaded file" in body["problems"][0], (bad, body)
        scenes = topic("steal", 1)["scenes"]
        status, body = await svc.call("POST", "/api/topics", body={"topic": "steal", "scenes": [
            {**scenes[0], "workflow": str(tmp_path / "w.json"), "reference_image": "references/x.png"}]})
        assert status == 422 and any("choose a bundled workflow" in p for p in body["problems"]), body
        assert srv.jobs == [] and not (svc.out / "steal" / "scenes.json").exists()


async def test_uploads_that_are_not_images_or_too_big_are_refused(start, tmp_path: Path):
    async with FakeComfyServer(job_time=0.0) as srv:
        svc = await start(with_comfy(tmp_path, srv, reference_max_mb=0.01))
        status, body = await svc.call("POST", "/api/topics/t/references", data=b"<html>not an image</html>", headers=PNG)
        assert status == 422 and "not an image" in body["problems"][0]
        status, body = await svc.call("POST", "/api/topics/t/references", data=png((1, 1, 1), (400, 400)) * 20, headers=PNG)
        assert status == 422 and "over the" in body["problems"][0]
        status, body = await svc.call("POST", "/api/topics/Not%20A%20Slug/references", data=png((1, 1, 1)), headers=PNG)
        assert status == 404


async def test_a_reference_uploaded_for_a_topic_never_submitted_can_be_deleted(start, tmp_path: Path):
    from service_helpers import offline

    svc = await start(offline(tmp_path))
    status, body = await svc.call("POST", "/api/topics/someday/references", data=png((1, 2, 3)), headers=PNG)
    assert status == 201 and (svc.out / "someday" / body["reference_image"]).is_file()
    status, listing = await svc.call("GET", "/api/topics")
    assert listing == []  # not a topic yet
    status, answer = await svc.call("DELETE", "/api/topics/someday")
    assert status == 200 and not (svc.out / "someday").exists(), answer
    status, _ = await svc.call("DELETE", "/api/topics/someday")
    assert status == 404
