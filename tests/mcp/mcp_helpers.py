"""Helpers of the MCP tests: sessions of the SDK's own client, tool calls checked against their published
output schemas (jsonschema), and the service under uvicorn.

Nothing of MCP is faked: the client is the official SDK's (``mcp`` 2.3.0: ``mcp/client/session.py``
``ClientSession``, ``mcp/client/stdio.py`` ``stdio_client``, ``mcp/client/streamable_http.py``
``streamable_http_client``, which in 2.x takes an ``httpx2.AsyncClient`` for headers), talking to the
real server (``sceneforge mcp`` as a subprocess, or ``/mcp`` of the service)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ImageContent, TextContent
from PIL import Image

from sceneforge.config import Settings
from sceneforge.service.server import ServiceServer, bind_socket, service_url, start_server
from sceneforge.service.service import Service

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ai-shorts.ko.json"
TOOLS = {"create_topic", "list_topics", "get_topic", "wait_topic", "get_scene", "edit_scene", "regenerate",
         "list_takes", "restore_take", "cancel", "render_preview", "compose", "list_voices", "doctor"}
#: Offline and quick: narration, a storyboard image and 5 Ken Burns frames per scene.
OFFLINE_ARGS = ["--offline", "--stages", "audio,image,motion", "--motion", "--motion-length", "5"]


def example() -> dict[str, Any]:
    """The bundled Korean example (examples/ai-shorts.ko.json), as create_topic takes it."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return {"topic": data["topic"], "scenes": [{k: v for k, v in s.items() if not k.endswith("_path")}
                                               for s in data["scenes"]]}


def server_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sceneforge", "mcp", "--out", str(out), *OFFLINE_ARGS, *extra]


@asynccontextmanager
async def stdio_session(out: Path, *, cwd: Path, command: list[str] | None = None) -> AsyncIterator[ClientSession]:
    """``sceneforge mcp`` as a subprocess, and an initialized client session with it."""
    cmd = command or server_command(out)
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], cwd=str(cwd))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    """A client session with the service's ``/mcp`` over streamable HTTP."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


@dataclass
class Running:
    service: Service
    server: ServiceServer
    url: str
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_service(settings: Settings) -> Running:
    """The service under uvicorn on 127.0.0.1, port 0 (as tests/service does)."""
    service = Service(settings)
    sock = bind_socket("127.0.0.1", 0)
    server, task = await start_server(service, sock, signals=False)
    assert server.ready.is_set(), "the service did not start"
    return Running(service, server, service_url(sock), task)


@dataclass
class Client:
    """A session whose every tool result is checked against the tool's published output schema."""

    session: ClientSession
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    async def tools(self) -> dict[str, Any]:
        listed = (await self.session.list_tools()).tools
        self.schemas = {t.name: t.output_schema for t in listed if t.output_schema}
        return {t.name: t for t in listed}

    async def raw(self, name: str, args: dict[str, Any]) -> CallToolResult:
        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            self.progress.append((done, total, message))
            self.progressed.set()

        return await self.session.call_tool(name, args, progress_callback=on_progress)

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        """The tool's structured result (it must not be an error, and must match its output schema)."""
        result = await self.raw(name, args)
        assert not result.is_error, f"{name}: {result.content}"
        assert result.structured_content is not None
        if not self.schemas:
            await self.tools()
        jsonschema.validate(result.structured_content, self.schemas[name])
        return result.structured_content

    async def error(self, name: str, **args: Any) -> str:
        """The text of a tool error (the call must be one)."""
        result = await self.raw(name, args)
        assert result.is_error, f"{name} should have failed: {result.structured_content}"
        assert all(isinstance(c, TextContent) for c in result.content)
        text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
        assert "Traceback" not in text
        return text


def pictures(result: CallToolResult) -> list[Image.Image]:
    """The image contents of a result, decoded (each must be a PNG or JPEG)."""
    out = []
    for block in result.content:
        if isinstance(block, ImageContent):
            assert block.mime_type in ("image/png", "image/jpeg")
            im = Image.open(io.BytesIO(base64.b64decode(block.data)))
            im.load()
            assert im.format == block.mime_type.split("/")[1].upper()
            out.append(im)
    return out
