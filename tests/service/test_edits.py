"""Per-scene work through the API: an edit remakes exactly what it invalidates, a re-roll makes a new take
(its seed recorded), an old take comes back, and a preview or the final cut renders in the background."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from service_helpers import kinds, mtimes, offline, statuses, topic, with_comfy

from fakes.backends import FakeTTS


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {k for k in after if after[k] != before.get(k)} | (set(before) - set(after))


async def test_an_edit_remakes_only_what_it_invalidates(start, tmp_path: Path):
    svc = await start(offline(tmp_path, stages=("audio", "image", "motion"), motion_enabled=True, motion_length=5))
    await svc.submit(topic("edit me", 3))
    await svc.wait("edit-me")
    root = svc.out / "edit-me"
    before = mtimes(root)
    assert len(before) == 3 * (2 + 1 + 5)  # mp3 + srt, png, 5 frames per scene

    status, body = await svc.call("PATCH", "/api/topics/edit-me/scenes/2", body={"script": "A brand new line."})
    assert (status, body) == (202, {"slug": "edit-me", "status": "queued"})
    state = await svc.wait("edit-me")
    assert state["status"] == "done" and state["scenes"][1]["script"] == "A brand new line."
    assert changed(before, mtimes(root)) == {"audio_scene_2.mp3", "audio_scene_2.srt"}

    before = mtimes(root)
    await svc.call("PATCH", "/api/topics/edit-me/scenes/3", body={"image_prompt": "a red lighthouse"})
    events = await svc.stream("edit-me", after=state["last_event_id"])
    assert changed(before, mtimes(root)) == {"image_scene_3.png", *(f"motion_scene_3/frame_000{i}.png"
                                                                    for i in range(1, 6))}
    assert kinds(events)[:2] == ["scene_edited", "status:queued"] and events[0]["scene"] == 3
    assert {(e["stage"], e["scene"]) for e in events if e["kind"] == "scene_done"} == {("image", 3), ("motion", 3)}


async def test_an_edit_of_an_unknown_field_is_kept_and_remakes_nothing(start, tmp_path: Path):
    svc = await start(offline(tmp_path, tts="fake", offline=False, image_backend="storyboard"))
    await svc.submit(topic("notes", 2))
    await svc.wait("notes")
    calls = sum(FakeTTS.calls.values())
    before = mtimes(svc.out / "notes")
    await svc.call("PATCH", "/api/topics/notes/scenes/1", body={"note": "check the colours"})
    state = await svc.wait("notes")
    assert state["scenes"][0]["note"] == "check the colours"
    assert mtimes(svc.out / "notes") == before and sum(FakeTTS.calls.values()) == calls
    saved = json.loads((svc.out / "notes" / "scenes.json").read_text())
    assert saved["scenes"][0]["note"] == "check the colours"


async def test_a_scene_sent_back_as_the_api_showed_it_changes_only_what_changed(start, tmp_path: Path):
    svc = await start(offline(tmp_path, tts="fake", offline=False, image_backend="storyboard"))
    await svc.submit(topic("echo", 2))
    state = await svc.wait("echo")
    calls = dict(FakeTTS.calls)
    scene = {**state["scenes"][0], "script": "Echoed back."}  # with its n, urls and asset fields
    status, _ = await svc.call("PATCH", "/api/topics/echo/scenes/1", body=scene)
    assert status == 202
    after = await svc.wait("echo")
    saved = json.loads((svc.out / "echo" / "scenes.json").read_text())["scenes"][0]
    assert "n" not in saved and "urls" not in saved and saved["script"] == "Echoed back."
    assert after["scenes"][0]["n"] == 1 and FakeTTS.calls["Echoed back."] == 1
    assert {k: v for k, v in FakeTTS.calls.items() if k != "Echoed back."} == calls
    status, answer = await svc.call("PATCH", "/api/topics/echo/scenes/1", body={"audio_duration": 99.0})
    assert status == 422 and answer["problems"] == ["scene 1: audio_duration is made by sceneforge and cannot be edited"]
    await svc.submit({"topic": "echo", "scenes": after["scenes"]})  # the whole state, sent back
    again = await svc.wait("echo")
    assert [s["script"] for s in again["scenes"]] == ["Echoed back.", "echo line 2."]
    assert "n" not in json.loads((svc.out / "echo" / "scenes.json").read_text())["scenes"][1]


async def test_regenerate_with_a_seed_records_it_keeps_the_old_take_and_restores_it(start, comfy, tmp_path: Path):
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit(topic("roll", 2))
    first = await svc.wait("roll")
    old_seed, other_seed = first["scenes"][0]["image_seed"], first["scenes"][1]["image_seed"]
    _, old_png = await svc.call("GET", first["scenes"][0]["urls"]["image"])
    jobs = len(comfy.jobs)

    status, body = await svc.call("POST", "/api/topics/roll/scenes/1/regenerate", body={"stage": "image", "seed": 1234})
    assert (status, body) == (202, {"slug": "roll", "status": "queued"})
    state = await svc.wait("roll")
    scene = state["scenes"][0]
    assert state["status"] == "done" and scene["image_seed"] == 1234 and scene["seed"] == 1234
    assert state["scenes"][1]["image_seed"] == other_seed  # the other scene is untouched
    assert len(comfy.jobs) == jobs + 1
    assert [n["inputs"]["seed"] for n in comfy.jobs[-1]["graph"].values() if "seed" in n["inputs"]] == [1234]
    _, new_png = await svc.call("GET", scene["urls"]["image"])
    assert new_png != old_png

    status, takes = await svc.call("GET", "/api/topics/roll/scenes/1/takes")
    assert status == 200 and len(takes["audio"]) == 1 and takes["motion"] == []
    old, new = takes["image"]
    assert (old["seed"], old["current"], new["seed"], new["current"]) == (old_seed, False, 1234, True)
    assert old["url"].startswith("/files/roll/.sceneforge/takes/image/scene_1/") and new["url"] == scene["urls"]["image"]
    assert await svc.call("GET", old["url"]) == (200, old_png)

    status, takes = await svc.call("POST", f"/api/topics/roll/scenes/1/takes/image/{old['id']}/restore")
    assert status == 200 and [t["current"] for t in takes["image"]] == [True, False]
    status, state = await svc.call("GET", "/api/topics/roll")
    assert state["scenes"][0]["image_seed"] == old_seed and state["status"] == "done"
    assert (svc.out / "roll" / "image_scene_1.png").read_bytes() == old_png
    assert len(comfy.jobs) == jobs + 1  # a restore renders nothing
    events = await svc.stream("roll", after=state["last_event_id"] - 1)
    assert events[-1]["kind"] == "take_restored" and events[-1]["data"] == {"take": old["id"]}


async def test_regenerate_without_a_seed_unpins_and_rolls_a_new_one(start, comfy, tmp_path: Path):
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit({"topic": "pinned", "scenes": [{"script": "one.", "image_prompt": "p", "seed": 77}]})
    first = await svc.wait("pinned")
    assert first["scenes"][0]["image_seed"] == 77
    await svc.call("POST", "/api/topics/pinned/scenes/1/regenerate", body={"stage": "image"})
    state = await svc.wait("pinned")
    assert "seed" not in state["scenes"][0] and state["scenes"][0]["image_seed"] != 77
    assert state["scenes"][0]["audio_duration"] == first["scenes"][0]["audio_duration"]


async def test_regenerating_an_image_remakes_its_motion_and_audio_stands(start, comfy, tmp_path: Path):
    svc = await start(with_comfy(tmp_path, comfy, stages=("audio", "image", "motion"), motion_enabled=True))
    await svc.submit(topic("clip", 2))
    await svc.wait("clip")
    audio_calls = dict(FakeTTS.calls)
    before = mtimes(svc.out / "clip")
    await svc.call("POST", "/api/topics/clip/scenes/2/regenerate", body={"stage": "image"})
    state = await svc.wait("clip")
    assert state["status"] == "done" and FakeTTS.calls == audio_calls
    remade = {k.split("/")[0] for k in changed(before, mtimes(svc.out / "clip"))}
    assert remade == {"image_scene_2.png", "motion_scene_2", "motion_scene_2.mp4"}  # the Wan graph saves a video too
    status, takes = await svc.call("GET", "/api/topics/clip/scenes/2/takes")
    assert [len(takes[s]) for s in ("audio", "image", "motion")] == [1, 2, 2]
    assert len(takes["motion"][0]["urls"]) >= 5 and takes["motion"][1]["current"]
    # The old image back brings the motion made from it back too; nothing is rendered.
    jobs = len(comfy.jobs)
    status, after = await svc.call("POST", f"/api/topics/clip/scenes/2/takes/image/{takes['image'][0]['id']}/restore")
    assert status == 200 and [t["current"] for t in after["motion"]] == [True, False]
    status, state = await svc.call("GET", "/api/topics/clip")
    assert state["status"] == "done" and len(comfy.jobs) == jobs
    _, frame = await svc.call("GET", state["scenes"][1]["urls"]["motion_frames"][0])
    assert (frame, len(state["scenes"][1]["urls"]["motion_frames"])) == (
        (await svc.call("GET", takes["motion"][0]["urls"][0]))[1], 5)  # the old clip's frames


async def test_preview_renders_in_the_background_and_says_where(start, tmp_path: Path):
    svc = await start()
    await svc.submit({"topic": "show", "scenes": [{"script": "Hi.", "image_prompt": "a cat"}]})
    done = await svc.wait("show")
    status, body = await svc.call("POST", "/api/topics/show/preview")
    assert (status, body) == (202, {"slug": "show", "status": "queued"})
    events = await svc.stream("show", after=done["last_event_id"])
    assert statuses(events) == ["queued", "running", "done"]
    made = next(e for e in events if e["kind"] == "preview_done")["data"]
    assert made["urls"] == {"preview": "/files/show/preview.mp4", "contact_sheet": "/files/show/contact_sheet.png"}
    async with svc.http.get(svc.url + made["urls"]["preview"]) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
        assert (await resp.read())[4:8] == b"ftyp"
    status, png = await svc.call("GET", made["urls"]["contact_sheet"])
    assert status == 200 and png.startswith(b"\x89PNG")


async def test_a_preview_of_a_topic_without_narration_fails_with_the_reason(start, tmp_path: Path):
    svc = await start()
    await svc.submit({**topic("mute", 1), "options": {"stages": ["image"]}})
    await svc.wait("mute")
    await svc.call("POST", "/api/topics/mute/preview")
    state = await svc.wait("mute")
    assert state["status"] == "failed" and "scene 1" in state["error"] and "audio" in state["error"]


def _ffmpeg_children(root: Path) -> list[int]:
    """Pids of this process's children that encode raw video into ``root`` (the preview's ffmpeg)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue  # not a process, or gone meanwhile
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if ppid == str(os.getpid()) and b"rawvideo" in cmdline and any(str(root).encode() in a for a in cmdline):
            found.append(int(proc.name))
    return found


async def test_cancelling_a_preview_stops_the_encode_and_leaves_nothing_half_written(start, tmp_path: Path):
    svc = await start()
    long_line = "This narration goes on for a while, so that the preview has many frames to encode. " * 3
    await svc.submit({"topic": "long", "scenes": [{"script": long_line, "image_prompt": f"p{i}"} for i in range(3)]})
    done = await svc.wait("long")
    await svc.call("POST", "/api/topics/long/preview")
    await svc.stream("long", after=done["last_event_id"], until_idle=False,
                     stop=lambda e: e["kind"] == "status" and e["data"]["status"] == "running")
    root = svc.out / "long"
    deadline = time.monotonic() + 60
    while not (encoders := _ffmpeg_children(root)):  # the encode has begun: an ffmpeg of ours writes into it
        assert time.monotonic() < deadline, "no ffmpeg encode was seen"
        await asyncio.sleep(0.01)
    assert await svc.call("POST", "/api/topics/long/cancel") == (200, {"slug": "long", "status": "cancelled"})
    # The answer comes once the job settled: its ffmpeg has ended and been reaped (no process, not even a zombie).
    assert [pid for pid in encoders if Path(f"/proc/{pid}").exists()] == []
    assert not (root / "preview.mp4").exists() and not list(root.glob(".*.part"))
    await svc.call("PATCH", "/api/topics/long/scenes/1", body={"script": "Short now."})  # the lock was let go
    assert (await svc.wait("long"))["status"] == "done"


async def test_compose_renders_the_final_cut_in_the_background_and_says_where(start, tmp_path: Path):
    import av

    svc = await start()
    await svc.submit({"topic": "cut", "scenes": [{"script": "Hi.", "image_prompt": "a cat"}]})
    done = await svc.wait("cut")
    status, body = await svc.call("POST", "/api/topics/cut/compose")
    assert (status, body) == (202, {"slug": "cut", "status": "queued"})
    events = await svc.stream("cut", after=done["last_event_id"])
    assert statuses(events) == ["queued", "running", "done"]
    made = next(e for e in events if e["kind"] == "compose_done")["data"]
    assert made["urls"] == {"final": "/files/cut/final.mp4", "cover": "/files/cut/cover.jpg"}
    assert made["captions"] == ["lines"] and made["duration"] > 0.25
    with av.open(str(svc.out / "cut" / "final.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (1080, 1920) and c.metadata["title"] == "cut"
    status, jpg = await svc.call("GET", made["urls"]["cover"])
    assert status == 200 and jpg[:3] == b"\xff\xd8\xff"
    _, state = await svc.call("GET", "/api/topics/cut")
    assert {"final", "cover"} <= set(state["preview_urls"])


async def test_cancelling_a_compose_ends_ffmpeg_and_leaves_nothing_half_written(start, tmp_path: Path):
    svc = await start()
    long_line = "This narration goes on for a while, so that the final cut has many frames to encode. " * 3
    await svc.submit({"topic": "longcut", "scenes": [{"script": long_line, "image_prompt": f"p{i}"}
                                                     for i in range(3)]})
    done = await svc.wait("longcut")
    await svc.call("POST", "/api/topics/longcut/compose")
    await svc.stream("longcut", after=done["last_event_id"], until_idle=False,
                     stop=lambda e: e["kind"] == "status" and e["data"]["status"] == "running")
    assert await svc.call("POST", "/api/topics/longcut/cancel") == (200, {"slug": "longcut", "status": "cancelled"})
    root = svc.out / "longcut"
    assert not (root / "final.mp4").exists() and not (root / "cover.jpg").exists() and not list(root.glob(".*.part"))
    await svc.call("PATCH", "/api/topics/longcut/scenes/1", body={"script": "Short now."})  # the lock was let go
    assert (await svc.wait("longcut"))["status"] == "done"


async def test_a_cancelled_or_failed_re_roll_leaves_the_scene_as_it_was(start, comfy, tmp_path: Path):
    svc = await start(with_comfy(tmp_path, comfy))
    await svc.submit({"topic": "keep", "scenes": [{"script": "one.", "image_prompt": "p", "seed": 42}]})
    first = await svc.wait("keep")
    image = (svc.out / "keep" / "image_scene_1.png").read_bytes()
    comfy.fault("hang")  # the re-roll's job runs until it is interrupted
    await svc.call("POST", "/api/topics/keep/scenes/1/regenerate", body={"stage": "image"})
    await svc.stream("keep", after=first["last_event_id"], until_idle=False, stop=lambda e: e["kind"] == "job_queued")
    status, _ = await svc.call("POST", "/api/topics/keep/cancel")
    assert status == 200
    _, state = await svc.call("GET", "/api/topics/keep")
    scene = state["scenes"][0]
    assert state["status"] == "cancelled"
    assert scene["seed"] == 42 and scene["image_seed"] == 42 and "image" in scene["urls"]  # the pin and the image
    assert (svc.out / "keep" / "image_scene_1.png").read_bytes() == image
    _, takes = await svc.call("GET", "/api/topics/keep/scenes/1/takes")
    assert [(t["seed"], t["current"]) for t in takes["image"]] == [(42, True)]

    comfy.clear_faults()
    comfy.fault("node_errors")  # now the re-roll fails: the scene still keeps what it had
    await svc.call("POST", "/api/topics/keep/scenes/1/regenerate", body={"stage": "image", "seed": 7})
    state = await svc.wait("keep")
    assert state["status"] == "failed" and state["scenes"][0]["seed"] == 42 and "image" in state["scenes"][0]["urls"]
    comfy.clear_faults()
    jobs = len(comfy.jobs)
    await svc.call("PATCH", "/api/topics/keep/scenes/1", body={"script": "two."})
    state = await svc.wait("keep")
    assert state["status"] == "done" and len(comfy.jobs) == jobs  # the image was not remade


def graph_seeds(job: dict) -> list[int]:
    return [n["inputs"][k] for n in job["graph"].values() for k in ("seed", "noise_seed") if k in n["inputs"]]


async def test_a_cancelled_image_re_roll_keeps_the_motion_and_its_pinned_seed(start, comfy, tmp_path: Path):
    svc = await start(with_comfy(tmp_path, comfy, stages=("audio", "image", "motion"), motion_enabled=True))
    await svc.submit({"topic": "clip2", "scenes": [{"script": "one.", "image_prompt": "p", "motion_seed": 7}]})
    first = await svc.wait("clip2")
    assert first["scenes"][0]["motion_seed"] == 7 and 7 in graph_seeds(comfy.jobs[-1])
    frames = first["scenes"][0]["urls"]["motion_frames"]
    comfy.fault("hang")
    await svc.call("POST", "/api/topics/clip2/scenes/1/regenerate", body={"stage": "image", "seed": 1234})
    await svc.stream("clip2", after=first["last_event_id"], until_idle=False, stop=lambda e: e["kind"] == "job_queued")
    await svc.call("POST", "/api/topics/clip2/cancel")
    _, state = await svc.call("GET", "/api/topics/clip2")
    scene = state["scenes"][0]
    assert state["status"] == "cancelled" and "seed" not in scene  # the image pin as it was: none
    assert scene["urls"]["motion_frames"] == frames and scene["motion_seed"] == 7  # the motion still shown

    comfy.clear_faults()  # a re-roll that completes: the new image's motion keeps the pinned motion seed
    await svc.call("POST", "/api/topics/clip2/scenes/1/regenerate", body={"stage": "image"})
    state = await svc.wait("clip2")
    assert state["status"] == "done" and state["scenes"][0]["motion_seed"] == 7
    assert 7 in graph_seeds(comfy.jobs[-1])  # the Wan job of the new image


async def test_a_failed_motion_re_roll_with_a_seed_leaves_the_motion_as_it_was(start, tmp_path: Path):
    svc = await start(offline(tmp_path, stages=("audio", "image", "motion"), motion_enabled=True, motion_length=5))
    await svc.submit(topic("mfail", 1))
    first = await svc.wait("mfail")
    image = svc.out / "mfail" / "image_scene_1.png"
    kept = image.read_bytes()
    image.write_bytes(b"not a png")  # the motion re-roll cannot read its image: it fails
    await svc.call("POST", "/api/topics/mfail/scenes/1/regenerate", body={"stage": "motion", "seed": 99})
    state = await svc.wait("mfail")
    image.write_bytes(kept)
    scene = state["scenes"][0]
    assert state["status"] == "failed" and "mfail/image_scene_1.png" in state["error"], state["error"]
    assert scene["motion_seed"] == first["scenes"][0]["motion_seed"] != 99
    assert scene["urls"]["motion_frames"] == first["scenes"][0]["urls"]["motion_frames"]
    assert str(svc.out) not in state["error"]
    events = await svc.stream("mfail", after=first["last_event_id"])
    failed = [e for e in events if e["kind"] == "scene_failed"]
    assert failed and "mfail/image_scene_1.png" in json.dumps(failed) and str(svc.out) not in json.dumps(events)


async def test_a_re_roll_begun_before_a_restart_and_cancelled_while_queued_is_put_back(start, comfy, tmp_path: Path):
    from sceneforge.cache import StageCache
    from sceneforge.pipeline import Reroll
    from sceneforge.takes import TakeStore

    svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1))
    await svc.submit({"topic": "later", "scenes": [{"script": "one.", "image_prompt": "p", "seed": 42}]})
    await svc.wait("later")
    comfy.fault("hang")
    await svc.submit(topic("busy", 1))  # holds the only worker
    await svc.stream("busy", until_idle=False, stop=lambda e: e["kind"] == "job_queued")
    status, _ = await svc.call("POST", "/api/topics/later/scenes/1/regenerate", body={"stage": "image"})
    assert status == 202
    # As a re-roll that had begun before the service stopped: its pin set, the old take kept and replaced.
    ws = svc.service.jobs.store.topic("later")
    layout = ws.layout
    ws.begin_reroll(Reroll(1, "image", None))
    TakeStore(StageCache(layout)).keep("image", 1)
    StageCache(layout).invalidate("image", 1)
    status, _ = await svc.call("POST", "/api/topics/later/cancel")
    _, state = await svc.call("GET", "/api/topics/later")
    assert state["status"] == "cancelled" and state["scenes"][0]["seed"] == 42 and "image" in state["scenes"][0]["urls"]
    _, takes = await svc.call("GET", "/api/topics/later/scenes/1/takes")
    assert [t["current"] for t in takes["image"]] == [True]
    await svc.call("POST", "/api/topics/busy/cancel")
