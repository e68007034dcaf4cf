"""``/mcp`` inside ``sceneforge serve``: the same tools over streamable HTTP, stateless.

:func:`mount_mcp` adds the route to the service's own app (so every middleware of the
app, the token check and the body limit among them, stands in front of it) and answers
the context manager that runs the SDK's session manager; the app's lifespan enters it
once the service has started and leaves it before the service stops. The tools share
the service's queue, topics and events; a ``wait_topic`` in flight ends when the
service stops (its event streams close).

Stateless: every POST is a session of its own (no ``Mcp-Session-Id`` to keep), and a
tool call's progress notifications come back on that POST's event stream. The
service's own Host, Origin and Content-Type checks (:mod:`sceneforge.service.guard`)
stand in front of it like every route, so the SDK's own DNS-rebinding check is left
off (it would refuse the names an operator allows with ``--allowed-host``).

Follows ``mcp`` 2.3.0: ``MCPServer.streamable_http_app`` builds the
:class:`~mcp.server.streamable_http_manager.StreamableHTTPSessionManager` (its own
Starlette app is not used), whose ``run()`` must be entered once in the host app's
lifespan (its docstring); :class:`~mcp.server.streamable_http_manager.StreamableHTTPASGIApp`
is the ASGI endpoint the SDK's own app routes to.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp

from ..service.service import Service
from .ops import ServiceOps
from .tools import build_server

__all__ = ["mount_mcp", "MCP_PATH"]

MCP_PATH = "/mcp"


def mount_mcp(app: FastAPI, service: Service) -> AbstractAsyncContextManager[None]:
    """Serve the MCP tools of ``service`` at ``/mcp`` of ``app``; what to run while the app runs."""
    server = build_server(ServiceOps(service, local=False))
    settings = service.settings
    server.streamable_http_app(  # builds the session manager (its own Starlette app is not used)
        stateless_http=True,
        json_response=False,
        max_request_body_size=settings.serve_max_body,
        transport_security=None,  # the service's guard checks Host and Origin (see above)
        host=settings.serve_host,
    )
    manager = server.session_manager
    app.add_route(MCP_PATH, StreamableHTTPASGIApp(manager), include_in_schema=False)  # type: ignore[arg-type]
    return manager.run()
