"""``sceneforge mcp``: the MCP server over stdio, with a service running in this process.

The service starts when the MCP session begins and stops when it ends (the client
closes stdin). stdout carries the protocol and nothing else: the SDK's stdio transport
points file descriptor 1 at stderr while it serves (so a stray print, or a child
process's output, lands on stderr), and the service starts and stops inside it;
logs go to stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..config import Settings
from ..service.service import Service
from .ops import ServiceOps
from .tools import build_server

__all__ = ["run_stdio", "serve_stdio"]


async def serve_stdio(settings: Settings) -> None:
    """Serve one MCP session on stdin/stdout; a :class:`Service` on ``settings`` runs meanwhile."""
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[None]:
        await service.start()
        try:
            yield None
        finally:
            await service.stop()

    server = build_server(ServiceOps(service, local=True), lifespan=lifespan)
    await server.run_stdio_async()


def run_stdio(settings: Settings) -> None:
    """:func:`serve_stdio` until the client goes away."""
    asyncio.run(serve_stdio(settings))
