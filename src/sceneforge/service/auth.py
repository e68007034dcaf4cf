"""Who may talk to the service, and how much they may send.

* On a loopback address (``127.0.0.1``, ``::1``, ``localhost``) no token is needed.
  On any other address the service refuses to start without ``SCENEFORGE_SERVE_TOKEN``
  (:func:`check_bind`); with a token set, every ``/api`` and ``/files`` request must
  carry ``Authorization: Bearer <token>`` (401 otherwise); so must ``/mcp``, the MCP tools. The comparison takes the
  same time however much of the token matches, and the token is never logged.
  A browser cannot put a header on ``<img>``, ``<audio>`` or ``<video>``, so a
  ``GET``/``HEAD`` of ``/files`` also takes the token from the ``sceneforge_token``
  cookie (the review page sets it, ``SameSite=Strict``, for ``/files`` only): only
  reads of files, which another site's page could not see anyway, never a change.
  The API page (``/docs``, ``/openapi.json``) and the static page at ``/`` hold no
  data and stay open, so a browser can load them and then send the token.
* A request body over ``serve_max_body`` bytes gets 413 before any of it reaches a
  route: a declared ``Content-Length`` is refused at once, a chunked body as soon as
  it passes the limit.

Both are plain ASGI middlewares: they never buffer a response, so the SSE stream
flows through them untouched.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import ConfigError

__all__ = ["is_loopback", "check_bind", "BearerAuth", "BodyLimit", "PROTECTED_PREFIXES", "TOKEN_COOKIE"]

PROTECTED_PREFIXES = ("/api/", "/api", "/files/", "/mcp")
#: The cookie a browser may send the token in, for reading ``/files`` (media elements send no headers).
TOKEN_COOKIE = "sceneforge_token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (a ConfigError: exit 2)."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who can reach it could run jobs and read "
            "every topic. Set SCENEFORGE_SERVE_TOKEN (clients then send 'Authorization: Bearer <token>'), "
            "or listen on 127.0.0.1"
        )


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with a small JSON body (before any route ran)."""
    data = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _cookie_token(scope: Scope) -> bytes | None:
    """The token from the ``sceneforge_token`` cookie (percent-encoded by the page), if sent."""
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == TOKEN_COOKIE.encode():
            return unquote_to_bytes(value.decode("latin-1"))
    return None


class BearerAuth:
    """401 for ``/api`` and ``/files`` requests without the right ``Authorization: Bearer`` token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIXES):
            given = _header(scope, b"authorization") or b""
            scheme, _, credentials = given.strip().partition(b" ")
            token = credentials.strip() if scheme.lower() == b"bearer" else None  # the scheme is case-insensitive
            if not given and scope["method"] in ("GET", "HEAD") and scope["path"].startswith("/files/"):
                token = _cookie_token(scope)
            if token is None or not hmac.compare_digest(token, self._expected):
                detail = "a token is needed: send 'Authorization: Bearer <token>'" if not given else "wrong token"
                await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a request body over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json(send, 400, {"detail": "Content-Length is not a number"})
                return
            if int(declared) > self.limit:
                await send_json(send, 413, {"detail": self._too_big()})
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the route reading the body: the framework answers it as JSON.
                    raise HTTPException(413, detail=self._too_big())
            return message

        await self.app(scope, limited_receive, send)

    def _too_big(self) -> str:
        return f"the request body is larger than {self.limit} bytes"
