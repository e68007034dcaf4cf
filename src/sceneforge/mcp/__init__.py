"""sceneforge as an MCP server (the official ``mcp`` SDK, version 2): tools an agent drives.

Two ways in, the same tools (:mod:`.tools`): ``sceneforge mcp`` over stdio (:mod:`.stdio`,
a service running in the process), and ``/mcp`` inside ``sceneforge serve`` (:mod:`.http`,
streamable HTTP, stateless). Every call into the service goes through :mod:`.ops`.
See docs/mcp.md.
"""

from __future__ import annotations

__all__: list[str] = []
