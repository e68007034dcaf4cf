"""``sceneforge mcp`` over stdio, driven by the SDK's own client (``stdio_client`` + ``ClientSession``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import quote

from flow import bad_input, check_tools, create_and_wait, look_at_scene, reroll_and_restore
from mcp_helpers import Client, example, server_command, stdio_session
from mcp_types import jsonrpc_message_adapter


async def test_an_agent_makes_looks_rerolls_and_restores_and_stdout_is_protocol_only(tmp_path: Path) -> None:
    """The whole walk over stdio. Everything the server process writes to stdout (teed to a file) is a
    JSON-RPC message, through narration workers, images and motion made, scenes shown, errors answered."""
    out = tmp_path / "out"
    wire = tmp_path / "stdout.jsonl"
    command = ["/bin/sh", "-c", 'exec "$@" | tee "$0"', str(wire), *server_command(out)]
    async with stdio_session(out, cwd=tmp_path, command=command) as session:
        client = Client(session)
        await check_tools(client)
        topic = await create_and_wait(client)
        slug = topic["slug"]
        scene = await look_at_scene(client, slug, 2)
        # Over stdio the files are this machine's paths.
        assert Path(scene["files"]["image"]) == out / slug / "image_scene_2.png"
        assert all(Path(p).is_file() for p in scene["files"]["motion_frames"])
        await reroll_and_restore(client, slug, 2, out / slug)
        await bad_input(client, slug)
        listed = await client.call("list_topics")
        assert [t["slug"] for t in listed["topics"]] == [slug]
        (listed_resource,) = (await session.list_resources()).resources
        assert listed_resource.uri == f"sceneforge://topics/{quote(slug, safe='')}/scenes.json"
        for uri in (listed_resource.uri, f"sceneforge://topics/{slug}/scenes.json"):
            resource = await session.read_resource(uri)
            scenes = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
            assert [s["n"] for s in scenes] == [1, 2, 3, 4, 5]
    assert (out / slug / "scenes.json").is_file()
    lines = wire.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 20  # an answer to every request, and the progress notifications
    for line in lines:
        jsonrpc_message_adapter.validate_json(line)


async def test_wait_says_still_running_when_the_timeout_passes_and_cancel_stops_it(tmp_path: Path) -> None:
    async with stdio_session(tmp_path / "out", cwd=tmp_path) as session:
        client = Client(session)
        slug = (await client.call("create_topic", **example()))["slug"]
        waited = await client.call("wait_topic", slug=slug, timeout_s=0)
        assert not waited["finished"] and waited["status"] in ("queued", "running")
        assert "call wait_topic again" in waited["message"]
        assert (await client.call("cancel", slug=slug))["status"] == "cancelled"
        assert (await client.call("wait_topic", slug=slug))["status"] == "cancelled"
        topic = await client.call("get_topic", slug=slug)
        assert topic["status"] == "cancelled"
        assert {v["state"] for s in topic["scenes"] for v in s["stages"].values()} <= {"done", "missing"}
        assert "no job to cancel" in await client.error("cancel", slug=slug)


async def test_a_bad_command_line_is_refused_on_stderr(tmp_path: Path) -> None:
    """Bad settings end the process with exit 2 and one clear line on stderr; stdout stays empty (an agent
    reading it never sees anything but the protocol)."""
    proc = await asyncio.create_subprocess_exec(
        *server_command(tmp_path / "out", "--motion-length", "0"), cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert stdout == b""
    assert "motion_length" in stderr.decode() and "Traceback" not in stderr.decode()
