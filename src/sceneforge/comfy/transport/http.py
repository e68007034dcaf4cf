"""The HTTP side of :class:`~sceneforge.comfy.client.ComfyClient`: URL, credentials, one session, capped reads.

A server is never trusted with our memory: every answer is read through
:func:`read_capped`, so an endless or huge body fails with a message naming the
server and the endpoint instead of growing the process (issue #11).

Credentials never leave this object: ``user:password`` in the URL becomes a
Basic ``Authorization`` header and is stripped from the URL kept; every
message names the server by ``redact_url``; header values only go on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import yarl

from ...config import redact_url
from ...errors import ConfigError, TransientError
from ..protocol.errors_map import connection_error, status_error

__all__ = [
    "ComfyHTTP", "DEFAULT_JSON_LIMITS", "NET_ERRORS", "MiB", "OwnSession", "capped_request", "parse_json", "read_capped",
    "size_text", "usable_session",
]

MiB = 1024 * 1024

#: Largest JSON answer accepted per endpoint (the first path segment), in bytes.
#: Generous on purpose: a cap only has to stop a runaway body, not a big server.
DEFAULT_JSON_LIMITS: dict[str, int] = {
    # 1.6 MB for the 887 classes of a stock ComfyUI 0.33 (comfyui/samples/basic); servers
    # with many custom node packs and long model lists reach tens of MB.
    "object_info": 64 * MiB,
    # One entry: the full API graph plus one file ref per output (a long clip saved as
    # frames lists hundreds); big workflows are a few hundred KB.
    "history": 32 * MiB,
    # The graph of every queued prompt: a deep queue of big workflows.
    "queue": 64 * MiB,
    # POST /prompt answers (node_errors can list every node of a big graph) and GET /prompt.
    "prompt": 8 * MiB,
    # Small by nature (a few KB): health checks, upload answers.
    "system_stats": 1 * MiB,
    "upload": 1 * MiB,
    "interrupt": 1 * MiB,
}
#: Any endpoint not in the table.
DEFAULT_JSON_LIMIT = 16 * MiB
#: Of an error answer only an excerpt is shown, so only this much is read.
ERROR_BODY_LIMIT = 64 * 1024

#: Failures of the transport itself (as opposed to an HTTP status we understood).
NET_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def usable_session(session: aiohttp.ClientSession | None, *, owned: bool, who: str) -> aiohttp.ClientSession:
    """The session to use now. One's own is made lazily (a session must be made inside a running loop) and
    made again when it belonged to a finished loop (a sync wrapper's); one given and closed is an error."""
    if owned and session is not None and session._loop is not asyncio.get_running_loop():
        session = None
    if session is None or session.closed:
        if not owned:
            raise RuntimeError(f"the aiohttp session given to {who} is closed")
        session = aiohttp.ClientSession()
    return session


def size_text(n: float) -> str:
    """``64 MiB``, ``512 KiB``, ``100 bytes``."""
    for unit, size in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{int(n)} bytes"


def _secret_value(value: Any) -> str:
    """Header values may arrive as pydantic ``SecretStr``; the wire needs the plain text."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value)


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body of ``resp``, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    length = resp.content_length
    if length is not None and length > limit:
        return None
    buf = bytearray()
    while chunk := await resp.content.readany():
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)


async def capped_request(
    session: aiohttp.ClientSession, method: str, url: yarl.URL, *, limit: int, server: str, what: str, **options: Any
) -> tuple[int, bytes | None, Mapping[str, str]]:
    """Send one request (``options`` go to aiohttp); return ``(status, body, headers)``: a ``200`` body read up
    to ``limit`` bytes (``None`` when it exceeds them), of any other answer only an excerpt. Transport
    failures are mapped to sceneforge's errors naming ``server`` and ``what``."""
    try:
        async with session.request(method, url, **options) as resp:
            if resp.status != 200:
                return resp.status, await resp.content.read(ERROR_BODY_LIMIT), resp.headers
            return resp.status, await read_capped(resp, limit), resp.headers
    except NET_ERRORS as exc:
        raise connection_error(exc, server, what) from exc


def parse_json(body: bytes, error: str) -> Any:
    """``body`` parsed, or :class:`TransientError` ``error``."""
    try:
        return json.loads(body)
    except ValueError:
        raise TransientError(error) from None


class OwnSession:
    """An aiohttp session given, or made (and closed) by its holder."""

    _session: aiohttp.ClientSession | None
    _owns_session: bool

    def _use_session(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._owns_session = session is None

    def _http(self) -> aiohttp.ClientSession:
        self._session = usable_session(self._session, owned=self._owns_session, who=type(self).__name__)
        return self._session

    async def _close_session(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


class ComfyHTTP(OwnSession):
    """URL, headers, session and the capped request helpers shared by the client's calls.

    ``max_json_bytes`` caps each JSON answer: one number for every endpoint, or a
    mapping endpoint -> bytes merged over :data:`DEFAULT_JSON_LIMITS`.
    """

    #: What a GPU second costs on this server (``price_per_second`` of its comfy_urls table), if known;
    #: the pool reads it, as it reads an endpoint's.
    price_per_second: float | None = None

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, Any] | None,
        session: aiohttp.ClientSession | None,
        http_timeout: float,
        max_json_bytes: int | Mapping[str, int] | None,
    ) -> None:
        self.server = redact_url(url)  # the only form of the URL that is ever printed
        try:
            parsed = yarl.URL(url)
        except (ValueError, TypeError):
            raise ConfigError(f"not a valid ComfyUI URL: {self.server}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"ComfyUI URL must look like http://host:port: {self.server}")
        if parsed.query_string:
            # Requests are built from the path alone, so a ?token=... would be silently dropped.
            raise ConfigError(
                f"ComfyUI URL must not carry a query string: {self.server}; send tokens as a header "
                "(SCENEFORGE_COMFY_HEADERS=\"Authorization: Bearer ...\")"
            )
        self._base = parsed.with_user(None).with_query(None).with_fragment(None)
        self._prefix = parsed.path.rstrip("/")  # a reverse-proxy prefix such as /comfy
        self._ws_scheme = "wss" if parsed.scheme == "https" else "ws"
        self._headers = {str(k): _secret_value(v) for k, v in (headers or {}).items()}
        if (parsed.user or parsed.password) and not any(k.lower() == "authorization" for k in self._headers):
            # Built by hand: aiohttp's BasicAuth/auth= are deprecated. An explicit
            # Authorization header (a bearer token) wins over URL credentials.
            token = base64.b64encode(f"{parsed.user or ''}:{parsed.password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self.http_timeout = float(http_timeout)
        self._timeout = aiohttp.ClientTimeout(total=self.http_timeout)
        self.json_limits = dict(DEFAULT_JSON_LIMITS)
        self.json_limit_default = DEFAULT_JSON_LIMIT
        if isinstance(max_json_bytes, Mapping):
            self.json_limits.update({str(k): int(v) for k, v in max_json_bytes.items()})
        elif max_json_bytes is not None:
            self.json_limits = dict.fromkeys(self.json_limits, int(max_json_bytes))
            self.json_limit_default = int(max_json_bytes)
        self._use_session(session)

    def _url(self, path: str, *, ws: bool = False) -> yarl.URL:
        url = self._base.with_path(f"{self._prefix}/{path.lstrip('/')}")
        return url.with_scheme(self._ws_scheme) if ws else url

    @property
    def url(self) -> str:
        """The server URL with any credentials redacted (what a pool or a message may show)."""
        return self.server

    def json_limit(self, path: str) -> int:
        """The answer cap of ``path`` (keyed by its first segment)."""
        return self.json_limits.get(path.lstrip("/").split("/", 1)[0], self.json_limit_default)

    # --- requests -----------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return ``(status, body)``. Transport failures are mapped.

        A 200 body larger than the endpoint's cap raises :class:`TransientError`
        naming the server and the endpoint; an error body is cut to an excerpt.
        """
        limit = self.json_limit(path)
        status, body, _ = await capped_request(
            self._http(), method, self._url(path), limit=limit, server=self.server, what=what,
            json=json_body, data=data, params=params, headers=self._headers, timeout=self._timeout)
        if body is None:
            key = path.lstrip("/").split("/", 1)[0]
            raise TransientError(
                f"ComfyUI at {self.server}: the answer of {method} /{path.lstrip('/')} exceeds {size_text(limit)} "
                f"(the max_json_bytes limit for /{key}); refusing to read more, while trying to {what}"
            )
        return status, body

    async def _get_json(self, path: str, *, what: str, params: Mapping[str, str] | None = None) -> Any:
        status, body = await self._request("GET", path, what=what, params=params)
        if status != 200:
            raise status_error(status, body.decode("utf-8", "replace"), self.server, what)
        return parse_json(body, f"ComfyUI at {self.server}: {what} returned a body that is not JSON (GET /{path})")

    async def _post_ok(self, path: str, body: Any, *, what: str) -> None:
        status, text = await self._request("POST", path, what=what, json_body=body)
        if status != 200:
            raise status_error(status, text.decode("utf-8", "replace"), self.server, what)
