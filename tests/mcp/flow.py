"""The walk an agent takes through a topic, run over both transports (tests/mcp/test_stdio.py, test_http.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
from mcp_helpers import TOOLS, Client, example, pictures

from sceneforge.layout import TopicLayout


async def check_tools(client: Client) -> None:
    """Every tool is listed with its input and output schemas."""
    tools = await client.tools()
    assert TOOLS <= set(tools), sorted(TOOLS - set(tools))
    for name in TOOLS:
        assert tools[name].output_schema is not None, f"{name} publishes no output schema"
        assert tools[name].output_schema["type"] == "object"
    assert set(tools["regenerate"].input_schema["required"]) == {"slug", "n", "stage"}


async def create_and_wait(client: Client) -> dict[str, Any]:
    """The Korean example made offline; waited for with progress notifications. Its get_topic answer."""
    accepted = await client.call("create_topic", **example())
    assert accepted["status"] == "queued" and "wait_topic" in accepted["next"]
    slug = accepted["slug"]
    client.progress.clear()
    waited = await client.call("wait_topic", slug=slug, timeout_s=120)
    assert waited["finished"] and waited["status"] == "done", waited
    assert client.progress, "no progress notification arrived"
    done, total, _ = client.progress[-1]
    assert total is not None and done == total == waited["progress"]["total"] > 0
    assert [p[0] for p in client.progress] == sorted(p[0] for p in client.progress)
    topic = await client.call("get_topic", slug=slug)
    assert len(topic["scenes"]) == 5
    for scene in topic["scenes"]:
        assert {s: v["state"] for s, v in scene["stages"].items()} == {"audio": "done", "image": "done",
                                                                        "motion": "done"}
        assert scene["stages"]["audio"]["duration_s"] > 0 and scene["failure"] is None
    return topic


async def look_at_scene(client: Client, slug: str, n: int) -> dict[str, Any]:
    """get_scene: its fields, its image and three of its five motion frames, each at most 768 px."""
    result = await client.raw("get_scene", {"slug": slug, "n": n})
    assert not result.is_error, result.content
    images = pictures(result)
    assert len(images) == 1 + 3
    for im in images:
        assert max(im.size) <= 768 and min(im.size) > 0
    scene = result.structured_content
    assert scene is not None and scene["n"] == n and scene["script"]
    jsonschema.validate(scene, client.schemas["get_scene"])
    assert len(scene["files"]["motion_frames"]) == 5
    return scene


async def reroll_and_restore(client: Client, slug: str, n: int, topic_dir: Path) -> None:
    """A re-roll of one image with a seed, then the earlier take restored; checked on disk."""
    image = TopicLayout(topic_dir.parent, topic_dir.name).root / f"image_scene_{n}.png"
    before = image.read_bytes()
    first = (await client.call("list_takes", slug=slug, n=n))["image"]
    assert len(first) == 1 and first[0]["current"]
    accepted = await client.call("regenerate", slug=slug, n=n, stage="image", seed=1234)
    assert accepted["slug"] == slug
    assert (await client.call("wait_topic", slug=slug, timeout_s=120))["status"] == "done"
    takes = await client.call("list_takes", slug=slug, n=n)
    assert [t["current"] for t in takes["image"]] == [False, True]
    assert takes["image"][1]["seed"] == 1234
    rerolled = image.read_bytes()
    assert rerolled != before
    scene = (await client.call("get_topic", slug=slug))["scenes"][n - 1]
    assert scene["stages"]["image"]["seed"] == 1234
    restored = await client.call("restore_take", slug=slug, n=n, stage="image", take_id=takes["image"][0]["id"])
    assert [t["current"] for t in restored["image"]] == [True, False]
    assert image.read_bytes() == before
    kept = list((topic_dir / ".sceneforge" / "takes" / "image" / f"scene_{n}").rglob("*.png"))
    assert any(p.read_bytes() == rerolled for p in kept), "the re-rolled take is not kept"


async def bad_input(client: Client, slug: str) -> None:
    """Refusals are tool errors naming every problem (the HTTP API's 422 problems), never a traceback."""
    text = await client.error("create_topic", scenes=[{"script": ""}, {"image_prompt": 3}])
    assert "4 problems" in text
    for problem in ("scene 1: script is empty", "scene 1: image_prompt is missing", "scene 2: script is missing",
                    "scene 2: image_prompt must be a string"):
        assert problem in text
    text = await client.error("create_topic", scenes=[{"script": "a", "image_prompt": "b"}],
                              options={"colour": "red", "seed": -5})
    assert "options.colour: unknown option" in text and "options.seed" in text
    assert "has scenes 1 to 5, not 9" in await client.error("get_scene", slug=slug, n=9)
    assert "no topic 'nope'" in await client.error("get_topic", slug="nope")
    assert "narration has no seed" in await client.error("regenerate", slug=slug, n=1, stage="audio", seed=3)
    assert "no image take 'x'" in await client.error("restore_take", slug=slug, n=1, stage="image", take_id="x")
    assert "nothing to change" in await client.error("edit_scene", slug=slug, n=1, changes={})


async def edit_preview_and_ask(client: Client, slug: str) -> None:
    """An edit remakes what it changed; a preview is rendered; voices and the doctor answer."""
    before = (await client.call("list_takes", slug=slug, n=1))["audio"]
    await client.call("edit_scene", slug=slug, n=1, changes={"script": "새로 쓴 첫 문장입니다."})
    assert (await client.call("wait_topic", slug=slug))["status"] == "done"
    scene = (await client.call("get_topic", slug=slug))["scenes"][0]
    assert scene["script"] == "새로 쓴 첫 문장입니다." and scene["stages"]["audio"]["state"] == "done"
    assert len((await client.call("list_takes", slug=slug, n=1))["audio"]) == len(before) + 1
    await client.call("render_preview", slug=slug)
    assert (await client.call("wait_topic", slug=slug))["status"] == "done"
    previews = (await client.call("get_topic", slug=slug))["previews"]
    assert set(previews) == {"preview", "contact_sheet"}
    voices = await client.call("list_voices", language="ko")
    assert voices["engine"] == "espeak" and [v["name"] for v in voices["voices"]] == ["ko"]
    assert "choose from espeak, edge, openai" in await client.error("list_voices", engine="piper")
    report = await client.call("doctor")
    assert report["healthy"] and report["narration"][0]["name"] == "espeak"
