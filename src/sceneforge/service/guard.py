"""Who may reach the service from a browser: ``Host`` (421), ``Origin`` (403) and ``Content-Type`` (415).

A service on loopback is still reachable by every web page its user opens. Three
checks, on every request and whatever the token setting, keep those pages out:

* **Host** (DNS rebinding). A page on ``attacker.example`` can make its name resolve to
  ``127.0.0.1`` and then read the service as its own origin; its requests still say
  ``Host: attacker.example``. Only the names and addresses of the bound interface are
  answered (on loopback: ``127.0.0.1``, ``localhost``, ``[::1]``, with the service's
  port), plus the operator's ``--allowed-host`` names; anything else gets 421.
* **Origin** (cross-site requests). A page may POST a ``text/plain`` or form body
  anywhere without a CORS preflight. A request that changes something (any method but
  ``GET``/``HEAD``/``OPTIONS``) whose ``Origin`` is not the service's own origin (the
  scheme and the ``Host`` it was reached by; another port is another origin) nor one
  allowed with ``--cors-origin`` gets 403; so does one without ``Origin`` whose
  ``Sec-Fetch-Site`` says another site sent it. Tools (curl, scripts) send neither.
* **Content-Type.** A body sent to a JSON route must say ``application/json`` (415
  otherwise), so no form or ``text/plain`` body is ever read as JSON; the reference
  upload takes its image types.

Reads across origins are the browser's own rule: the service sends no CORS headers
unless ``--cors-origin`` names the origin.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import is_loopback, send_json
from .targets import DEFAULT_PORTS

__all__ = ["RequestGuard", "allowed_names", "UPLOAD_TYPES", "split_host"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: The media types the reference upload route takes (its body is the image itself).
UPLOAD_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "application/octet-stream"})
_UPLOAD_PATH = re.compile(r"^/api/topics/[^/]+/references/?$")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``name``, ``[v6 address]``, then ``:port`` or nothing.
_HOST_SHAPE = re.compile(r"(\[[^][/?#@\\]*\]|[^][:/?#@\\]*)(:[0-9]*)?")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (``[v6]:port`` too) as a lower-case name without a trailing dot and a port; None if malformed."""
    value = value.strip().lower()
    if _HOST_SHAPE.fullmatch(value) is None:  # what urlsplit would take for a path, a query or a user
        return None
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:  # not an IPv6 address in brackets, a port past 65535
        return None
    name = (parts.hostname or "").removesuffix(".")
    return (name, port) if name else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def allowed_names(bind_host: str, extra: Iterable[str] = ()) -> tuple[frozenset[str], bool]:
    """The host names the service answers to on ``bind_host``, and whether any IP literal is fine
    (a wildcard bind: every address of the machine is its own; an IP literal cannot be rebound)."""
    host = bind_host.strip("[]").lower()
    names = {host}
    wildcard = host in ("0.0.0.0", "::", "")
    if wildcard or is_loopback(host):
        names |= LOOPBACK_NAMES
    if wildcard:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    for item in extra:
        parsed = split_host(item)
        if parsed is not None:
            names.add(parsed[0])
    return frozenset(names), wildcard


class RequestGuard:
    """The three checks above, as a plain ASGI middleware (it never buffers a response)."""

    def __init__(self, app: ASGIApp, *, bind_host: str, allowed_hosts: Iterable[str] = (),
                 cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.extra = frozenset(p[0] for p in map(split_host, allowed_hosts) if p is not None)
        self.names, self.any_ip = allowed_names(bind_host, allowed_hosts)
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = list(scope.get("headers", ()))
        headers = {k: v for k, v in raw}
        host = headers.get(b"host", b"").decode("latin-1")
        repeated = [k for k in (b"host", b"origin", b"content-type") if sum(1 for name, _ in raw if name == k) > 1]
        refusal = (400, f"the {repeated[0].decode()} header is repeated") if repeated else self._host_refusal(host, scope)
        if refusal is None and scope.get("method", "GET") not in _SAFE_METHODS:
            refusal = self._origin_refusal(headers, host, scope) or self._type_refusal(headers, scope)
        if refusal is not None:
            status, detail = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send_json(send, status, {"detail": detail})
            return
        await self.app(scope, receive, send)

    def _host_refusal(self, host: str, scope: Scope) -> tuple[int, str] | None:
        if not host:
            return None  # HTTP/1.0 tools; a browser always sends Host
        parsed = split_host(host)
        if parsed is not None:
            name, port = parsed
            if name in self.extra:
                return None  # the operator's names (behind a proxy the port may differ)
            server_port = (scope.get("server") or (None, None))[1]
            port_ok = port is None or server_port is None or port == server_port
            if port_ok and (name in self.names or (self.any_ip and _is_ip(name))):
                return None
        return 421, (f"this service does not answer to the host {host[:100]!r}; its operator can allow a name "
                     "with --allowed-host NAME (setting serve_allowed_hosts)")

    def _origin_refusal(self, headers: dict[bytes, bytes], host: str, scope: Scope) -> tuple[int, str] | None:
        origin = headers.get(b"origin")
        if origin is None:
            site = headers.get(b"sec-fetch-site", b"").lower()
            if site in (b"cross-site", b"same-site"):
                return 403, "a request from another site's page may not change anything here"
            return None
        text = origin.decode("latin-1").strip().rstrip("/").lower()
        if text in self.origins or self._same_origin(text, host, scope):
            return None
        return 403, (f"requests from the page at {text[:100]!r} may not change anything here; the operator can allow "
                     "an origin with --cors-origin")

    @staticmethod
    def _same_origin(origin: str, host: str, scope: Scope) -> bool:
        parts = urlsplit(origin)
        if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
            return False  # "null" (a sandboxed page, a file), or not a web origin at all
        mine = split_host(host)
        theirs = split_host(parts.netloc)
        if mine is None or theirs is None:
            return False
        server_port = (scope.get("server") or (None, None))[1]
        my_port = mine[1] or server_port or DEFAULT_PORTS[parts.scheme]
        return theirs[0] == mine[0] and (theirs[1] or DEFAULT_PORTS[parts.scheme]) == my_port

    @staticmethod
    def _type_refusal(headers: dict[bytes, bytes], scope: Scope) -> tuple[int, str] | None:
        path: str = scope.get("path", "")
        if not path.startswith(("/api/", "/mcp")):
            return None
        declared = headers.get(b"content-type")
        has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers
        if not has_body:
            return None  # a POST with no body (cancel, preview, restore): nothing is read as JSON
        media = (declared or b"").split(b";")[0].strip().lower().decode("latin-1")
        if _UPLOAD_PATH.match(path):
            if media in UPLOAD_TYPES:
                return None
            return 415, f"send the image itself with its type ({', '.join(sorted(UPLOAD_TYPES))}), not {media or 'no type'}"
        if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            return None
        return 415, f"send the body as JSON with 'Content-Type: application/json' (not {media or 'no type'})"
