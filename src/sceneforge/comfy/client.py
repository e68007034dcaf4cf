"""An async client for one ComfyUI server (HTTP + websocket, aiohttp).

The protocol facts it relies on are in ``comfyui/PROTOCOL.md``; the ones that
shape this code:

* the websocket is opened *before* ``POST /prompt`` so no message is missed;
* a job is finished at ``executing`` with ``node: null`` and our ``prompt_id``,
  not at ``execution_success`` (history may still be empty then, §4.4);
* the client picks the ``prompt_id`` itself, so it can cancel a job whose
  submission answer was lost, and a retry never leaves a twin running;
* ``/view`` takes ``filename``, ``subfolder`` and ``type`` as separate parameters.

One :class:`ComfyClient` talks to one server and :meth:`ComfyClient.run` is
self-contained (its own websocket and client id), so a pool of servers can wrap
several clients and run many jobs on each at once.

Credentials never leave this object: ``user:password`` in the URL becomes a
Basic ``Authorization`` header and is stripped from the URL kept; every
message names the server by ``redact_url``; header values only go on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import mimetypes
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from ..config import redact_url
from ..errors import (
    AssetMissingError,
    ConfigError,
    JobInterruptedError,
    PermanentError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
)
from .download import check_file_ref, check_server_name, not_found, stream_to_file
from .errors_map import connection_error, describe_cause, status_error, workflow_error
from .result import JobResult
from .watch import JobWatch, OnEvent

__all__ = ["ComfyClient", "JobResult", "OnEvent"]

log = logging.getLogger("sceneforge.comfy")

Sleep = Callable[[float], Awaitable[Any]]

#: Failures of the transport itself (as opposed to an HTTP status we understood).
_NET_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def _secret_value(value: Any) -> str:
    """Header values may arrive as pydantic ``SecretStr``; the wire needs the plain text."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value)


class ComfyClient:
    """Talk to one ComfyUI server.

    ``url`` is ``http(s)://[user:password@]host[:port][/prefix]``. ``timeout`` is the
    per-job limit of :meth:`run` (seconds, measured with ``clock``). ``sleep`` and
    ``clock`` are injected so tests drive time; ``ws_idle_timeout`` is how long a
    silent websocket is trusted before the client reconnects and polls, and
    ``poll_interval`` the beat of that fallback polling. ``http_timeout`` bounds
    each plain HTTP call. A ``session`` passed in is used and left open.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 300,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        ws_idle_timeout: float = 30,
        poll_interval: float = 1.0,
        http_timeout: float = 60,
        history_attempts: int = 5,
        unreachable_after: int = 5,
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
        self.timeout = float(timeout)
        self.ws_idle_timeout = float(ws_idle_timeout)
        self.poll_interval = float(poll_interval)
        self.http_timeout = float(http_timeout)
        self.history_attempts = max(1, int(history_attempts))
        self.unreachable_after = max(1, int(unreachable_after))
        self._sleep = sleep
        self._clock = clock
        self._session = session
        self._owns_session = session is None

    # --- lifecycle ----------------------------------------------------------
    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None if self._owns_session else self._session

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: a session must be made inside a running event loop.
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise RuntimeError("the aiohttp session given to ComfyClient is closed")
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self, path: str, *, ws: bool = False) -> yarl.URL:
        url = self._base.with_path(f"{self._prefix}/{path.lstrip('/')}")
        return url.with_scheme(self._ws_scheme) if ws else url

    @property
    def url(self) -> str:
        """The server URL with any credentials redacted (what a pool or a message may show)."""
        return self.server

    def __repr__(self) -> str:
        return f"ComfyClient({self.server!r})"

    # --- plain HTTP ---------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        """Send one request; return ``(status, body text)``. Transport failures are mapped."""
        try:
            async with self._http().request(
                method,
                self._url(path),
                json=json_body,
                data=data,
                params=params,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.http_timeout),
            ) as resp:
                return resp.status, await resp.text(errors="replace")
        except _NET_ERRORS as exc:
            raise connection_error(exc, self.server, what) from exc

    async def _get_json(self, path: str, *, what: str, params: Mapping[str, str] | None = None) -> Any:
        status, text = await self._request("GET", path, what=what, params=params)
        if status != 200:
            raise status_error(status, text, self.server, what)
        try:
            return json.loads(text)
        except ValueError:
            raise TransientError(f"ComfyUI at {self.server}: {what} returned a body that is not JSON") from None

    async def _post_ok(self, path: str, body: Any, *, what: str) -> None:
        status, text = await self._request("POST", path, what=what, json_body=body)
        if status != 200:
            raise status_error(status, text, self.server, what)

    async def system_stats(self) -> dict[str, Any]:
        """``GET /system_stats``: the health check.

        Raises :class:`ServerUnavailableError` (a ``RuntimeError``) naming the server
        and the cause when it cannot be reached or does not answer like ComfyUI.
        """
        what = "check its health"
        try:
            stats = await self._get_json("system_stats", what=what)
        except TransientError as exc:
            raise ServerUnavailableError(str(exc)) from exc
        if not isinstance(stats, dict) or "system" not in stats:
            raise ServerUnavailableError(f"{self.server} does not answer like a ComfyUI server (/system_stats)")
        return stats

    async def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """``GET /object_info`` (all node specs, ~1.6 MB) or one class (``{}`` when unknown)."""
        path = "object_info" if node_class is None else f"object_info/{node_class}"
        info = await self._get_json(path, what="read node specs")
        return info if isinstance(info, dict) else {}

    async def queue(self) -> dict[str, Any]:
        """``GET /queue``: ``{"queue_running": [...], "queue_pending": [...]}``."""
        q = await self._get_json("queue", what="read the queue")
        return q if isinstance(q, dict) else {}

    async def queue_ids(self) -> set[str]:
        """Prompt ids running or pending on the server."""
        q = await self.queue()
        ids: set[str] = set()
        for key in ("queue_running", "queue_pending"):
            for item in q.get(key) or []:
                if isinstance(item, list) and len(item) > 1:
                    ids.add(str(item[1]))
        return ids

    async def queue_depth(self) -> int:
        """Jobs running + pending (``GET /prompt`` ``exec_info.queue_remaining``; ``/queue`` as fallback)."""
        info = await self._get_json("prompt", what="read the queue depth")
        try:
            return int(info["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError):
            q = await self.queue()
            return len(q.get("queue_running") or []) + len(q.get("queue_pending") or [])

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of ``prompt_id``, or ``None`` while it has none (pending, running, unknown)."""
        data = await self._get_json(f"history/{prompt_id}", what="read the job history")
        if isinstance(data, dict):
            entry = data.get(prompt_id)
            if isinstance(entry, dict):
                return entry
        return None

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: stop ``prompt_id`` if it is the running job (no id: whatever runs)."""
        await self._post_ok("interrupt", {"prompt_id": prompt_id} if prompt_id else {}, what="interrupt a job")

    async def cancel(self, prompt_id: str) -> None:
        """Remove ``prompt_id`` from the queue and interrupt it if it already runs."""
        await self._post_ok("queue", {"delete": [prompt_id]}, what="remove a job from the queue")
        await self.interrupt(prompt_id)

    async def cancel_quietly(self, prompt_id: str) -> bool:
        """:meth:`cancel`, never raising (used on the way out of a failed or abandoned job)."""
        try:
            await asyncio.wait_for(self.cancel(prompt_id), timeout=min(self.http_timeout, 10.0))
            return True
        except Exception as exc:  # the original failure matters more than this one
            log.warning("could not cancel job %s on %s: %s", prompt_id, self.server, describe_cause(exc))
            return False

    async def upload_image(
        self, path: Path | str, *, name: str | None = None, subfolder: str = "", overwrite: bool = False
    ) -> str:
        """Upload a local file to the server's ``input`` folder (multipart ``/upload/image``).

        Returns the value for ``LoadImage.image``: the server's final name (it may add
        `` (1)`` when a different file already has that name), prefixed with
        ``subfolder/`` when a subfolder is used.
        """
        path = Path(path)
        name = check_server_name(name or path.name, "upload name", allow_slash=False)
        if subfolder:
            check_server_name(subfolder, "upload subfolder", allow_slash=True)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise AssetMissingError(f"cannot upload {path}: the file does not exist") from None
        form = aiohttp.FormData()
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        form.add_field("image", content, filename=name, content_type=ctype)
        form.add_field("type", "input")
        form.add_field("subfolder", subfolder)
        form.add_field("overwrite", "true" if overwrite else "false")
        what = f"upload {name}"
        status, text = await self._request("POST", "upload/image", what=what, data=form)
        if status == 400:
            # The same request will be rejected again.
            raise PermanentError(f"ComfyUI at {self.server} rejected the upload of {name} (HTTP 400)", status=400)
        if status != 200:
            raise status_error(status, text, self.server, what)
        try:
            answer = json.loads(text)
            final = check_server_name(answer["name"], "upload name", allow_slash=False)
            sub = check_server_name(answer.get("subfolder") or "", "upload subfolder", allow_slash=True)
        except (ValueError, KeyError, TypeError):
            raise TransientError(f"ComfyUI at {self.server}: odd answer to {what}") from None
        return f"{sub}/{final}" if sub else final

    async def download(self, file_ref: Mapping[str, Any], dest: Path | str) -> Path:
        """Fetch one output file (a history file ref) into ``dest``, atomically.

        The local name is always ``dest``; the server's names are only query
        parameters and are refused (:class:`UnsafePathError`) before any request when
        they could traverse. A short body raises :class:`DownloadError` and leaves
        nothing at ``dest``; a 404 raises :class:`GenerationError` naming the file.
        """
        filename, subfolder, kind = check_file_ref(dict(file_ref))
        label = f"{subfolder}/{filename}" if subfolder else filename
        params = {"filename": filename, "subfolder": subfolder, "type": kind}
        what = f"download {label}"
        try:
            async with self._http().get(
                self._url("view"),
                params=params,
                headers=self._headers,
                # No total limit: videos are big. A stalled body still fails on sock_read.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.http_timeout, sock_read=self.http_timeout),
            ) as resp:
                if resp.status == 404:
                    raise not_found(label, self.server)
                if resp.status in (400, 403):
                    raise UnsafePathError(f"ComfyUI at {self.server} refused to serve {label!r} (HTTP {resp.status})")
                if resp.status != 200:
                    raise status_error(resp.status, await resp.text(errors="replace"), self.server, what)
                return await stream_to_file(resp, Path(dest), label=label)
        except _NET_ERRORS as exc:
            raise connection_error(exc, self.server, what) from exc

    # --- websocket ----------------------------------------------------------
    async def open_ws(self, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        """Open ``/ws?clientId=...``. ``None`` when the handshake is refused by something
        in between (a proxy without websocket support): the job is then polled."""
        try:
            return await asyncio.wait_for(
                self._http().ws_connect(
                    self._url("ws", ws=True),
                    params={"clientId": client_id},
                    headers=self._headers,
                        max_msg_size=64 * 1024 * 1024,  # binary previews can be large
                ),
                timeout=self.http_timeout,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise status_error(exc.status, "", self.server, "open the websocket") from None
            log.warning("websocket refused by %s (HTTP %s); polling instead", self.server, exc.status)
            return None
        except _NET_ERRORS as exc:
            raise connection_error(exc, self.server, "open the websocket") from exc

    # --- jobs ---------------------------------------------------------------
    async def submit(self, graph: Mapping[str, Any], *, client_id: str, prompt_id: str) -> tuple[str, float | None]:
        """``POST /prompt``; return ``(prompt_id, number)``.

        400 -> :class:`WorkflowError` (one line per node error), 200 with node errors
        (partial acceptance) -> the accepted part is cancelled and :class:`WorkflowError`
        raised too, since every output is needed; 5xx -> :class:`TransientError`.
        """
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        what = "submit the workflow"
        try:
            status, text = await self._request("POST", "prompt", what=what, json_body=body)
        except TransientError:
            # The server may have queued it before the answer was lost: make sure it does not run.
            await self.cancel_quietly(prompt_id)
            raise
        if status == 400:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            raise workflow_error(parsed if isinstance(parsed, (dict, str)) else text, self.server)
        if status != 200:
            raise status_error(status, text, self.server, what)
        try:
            answer = json.loads(text)
            accepted_id = str(answer.get("prompt_id") or prompt_id)
        except (ValueError, AttributeError):
            await self.cancel_quietly(prompt_id)
            raise TransientError(f"ComfyUI at {self.server}: odd answer to {what}") from None
        if answer.get("node_errors"):
            await self.cancel_quietly(accepted_id)
            raise workflow_error(answer, self.server, partial=True)
        number = answer.get("number")
        return accepted_id, number if isinstance(number, (int, float)) else None

    async def run(
        self,
        graph: Mapping[str, Any],
        *,
        on_event: OnEvent | None = None,
        on_submit: Callable[[str, str], object] | None = None,
        timeout: float | None = None,
    ) -> JobResult:
        """Queue ``graph`` (API format), wait for it and return its history outputs.

        ``on_event(kind, data)`` hears ``queued``, ``started``, ``cached``,
        ``executing``, ``progress``, ``executed``, and the fallback's ``ws_dropped``,
        ``ws_idle``, ``ws_reconnected`` and ``polling``; ``data`` always holds ``prompt_id``.

        ``on_submit(prompt_id, client_id)`` runs just *before* the POST, so a journal can
        remember the job and a later run can :meth:`resume` it after a crash.

        Raises :class:`WorkflowError`, :class:`GenerationError` (``execution_error``),
        :class:`JobInterruptedError`, :class:`JobTimeoutError` (after cancelling the job
        on the server), :class:`TransientError` or :class:`ServerUnavailableError`.
        """
        client_id = uuid.uuid4().hex
        prompt_id = str(uuid.uuid4())
        deadline = self._clock() + (timeout or self.timeout)  # motion jobs take far longer than images
        ws = await self.open_ws(client_id)  # first, so no message of this job can be missed
        watch = JobWatch(self, client_id=client_id, prompt_id=prompt_id, ws=ws, deadline=deadline, on_event=on_event)
        try:
            if on_submit is not None:
                on_submit(prompt_id, client_id)
            prompt_id, number = await self.submit(graph, client_id=client_id, prompt_id=prompt_id)
            watch.prompt_id = prompt_id
            watch.emit("queued", number=number, server=self.server)
            result = await watch.wait()
            result.number = number
            return result
        except asyncio.CancelledError:
            # Abandoned (Ctrl-C, pipeline shutdown), possibly mid-POST: do not leave the
            # GPU working for nobody. Cancelling an id the server never queued is a no-op.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self.cancel_quietly(prompt_id))
            raise
        finally:
            await watch.close()

    async def resume(
        self, prompt_id: str, client_id: str, *, on_event: OnEvent | None = None, timeout: float | None = None
    ) -> JobResult | None:
        """Re-attach to a job an earlier (killed) run submitted, without running it again.

        Finished: its outputs from history. Still queued or running: wait for it on
        the websocket under its own clientId (execution messages go to that id only).
        Unknown to the server (restarted, or the POST never arrived): ``None``.
        """
        deadline = self._clock() + (timeout or self.timeout)
        ws = await self.open_ws(client_id)
        watch = JobWatch(self, client_id=client_id, prompt_id=prompt_id, ws=ws, deadline=deadline, on_event=on_event)
        try:
            entry = await self.history(prompt_id)
            if not entry and prompt_id not in await self.queue_ids():
                entry = await self.history(prompt_id)  # it may have finished between the two looks
                if not entry:
                    return None
            if entry:
                status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
                if status.get("status_str") == "error" or status.get("completed") is False:
                    return None  # it failed: a retry must run it again, not re-read the failure
                watch._accept(entry)
                return await watch._collect()
            watch.emit("resumed", server=self.server)
            try:
                return await watch.wait()
            except JobInterruptedError:
                return None  # interrupted (e.g. cancelled when an earlier attempt timed out): run it afresh
        finally:
            await watch.close()
