"""What every serverless endpoint member shares: its HTTP calls, its inputs inline, its outputs inline.

An endpoint runs a whole job per request: there is no ``/upload/image`` and no ``/view``.
So :meth:`EndpointMember.upload_image` only remembers the file under its content-addressed
name, and the job's request carries every ``LoadImage`` input it names as base64
(:meth:`inline_images`). Outputs come back in the answer, as base64 or as a URL
(RunPod's ``s3_url``); :meth:`download` writes one to its destination atomically, within
the same limits as a ``/view`` download (size cap, overall deadline, decoded before it is
kept), and an URL is fetched only over http(s) and never with the endpoint's key.

Calls answered ``429`` wait for ``Retry-After`` (through the injected ``sleep``) and try
again, up to :data:`MAX_RATE_LIMITED` times.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from ...errors import (
    AssetMissingError,
    ConfigError,
    DownloadError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
)
from ..protocol.driver import emit
from ..protocol.watch import OnEvent
from ..transport.download import Opener, check_server_name, download_checked
from ..transport.http import MiB, OwnSession, capped_request, parse_json, size_text
from ..transport.verify import VIDEO_EXTS

__all__ = ["EndpointMember", "MAX_RATE_LIMITED", "LOAD_IMAGE_CLASSES", "Sleep", "ms_to_seconds", "output_refs"]

Sleep = Callable[[float], Awaitable[Any]]
#: How many ``429`` answers in a row one call waits through before it gives up (transient).
MAX_RATE_LIMITED = 6
#: The longest ``Retry-After`` honoured at once (a bigger one is waited in this many seconds).
MAX_RETRY_AFTER = 60.0
#: The shortest wait after a ``429``, whatever its ``Retry-After`` says.
MIN_RETRY_AFTER = 1.0
#: Nodes whose ``image`` input names a file in ComfyUI's input folder.
LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask", "LoadImageOutput"})
_COUNTER = re.compile(r"_\d{5}_?$")


def retry_after(value: str | None) -> float:
    """Seconds of a ``Retry-After`` header (a number, at least :data:`MIN_RETRY_AFTER`: ``0`` must not
    become a burst of retries; a date or nonsense counts as 1 s)."""
    try:
        return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, float(value))) if value is not None else 1.0
    except ValueError:
        return 1.0


def ms_to_seconds(ms: Any) -> float | None:
    """A duration an endpoint reports in milliseconds, in seconds (``None`` unless a finite number >= 0)."""
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return None
    try:
        value = float(ms)
    except OverflowError:  # an integer past any float
        return None
    return value / 1000.0 if math.isfinite(value) and value >= 0 else None


def output_refs(files: list[dict[str, Any]], animated_exts: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Inline outputs as history-like ``outputs``: one pseudo-node per file series (``motion_3_00001_.png``,
    ``motion_3_00002_.png`` ... are one node), videos marked ``animated``, the payload kept in the ref."""
    outputs: dict[str, dict[str, Any]] = {}
    for item in files:
        name = check_server_name(item["filename"], "filename", allow_slash=False)
        path = Path(name)
        series = _COUNTER.sub("", path.stem) + path.suffix.lower()
        node = outputs.setdefault(series, {"images": []})
        node["images"].append({"filename": name, "subfolder": "", "type": "output",
                               "transport": item["transport"], "data": item["data"]})
        if path.suffix.lower() in VIDEO_EXTS | animated_exts:
            node["animated"] = [True]
    return outputs


class EndpointMember(OwnSession):
    """Base of :class:`~sceneforge.comfy.endpoints.runpod.RunPodClient` and the comfyui-api client."""

    #: Endpoints scale with their queue: the pool sends local servers work first.
    elastic = True
    kind: str

    #: Jobs at once when the settings do not say (``concurrency`` of its comfy_urls table).
    default_concurrency = 1
    #: Said after a refusal (HTTP 401/403): where the credentials come from.
    auth_hint = ""

    def __init__(
        self, base: str, *, server: str, headers: Mapping[str, str] | None = None, concurrency: int | None = None,
        price_per_second: float | None = None, timeout: float = 300, queue_timeout: float = 900,
        session: aiohttp.ClientSession | None = None, sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic, http_timeout: float = 60, max_answer_bytes: int = 512 * MiB,
        max_download_bytes: int = 1024 * MiB, download_timeout: float = 600, verify_downloads: bool = True,
    ) -> None:
        concurrency = self.default_concurrency if concurrency is None else concurrency
        # Checked here too, not only in the settings: members are also made directly (the API, the tests).
        if int(concurrency) < 1:
            raise ConfigError(f"{server}: concurrency must be at least 1, got {concurrency!r}")
        self._base = yarl.URL(base.rstrip("/"))
        self.server = server  # the only form of the endpoint ever printed; it never holds the key
        self._headers = dict(headers or {})
        self.concurrency = int(concurrency)
        self.price_per_second = price_per_second
        self.timeout = float(timeout)
        self.queue_timeout = float(queue_timeout)
        self._use_session(session)
        self._sleep = sleep
        self._clock = clock
        self.http_timeout = float(http_timeout)
        self.max_answer_bytes = int(max_answer_bytes)
        self.max_download_bytes = int(max_download_bytes)
        self.download_timeout = float(download_timeout)
        self.verify_downloads = bool(verify_downloads)
        self.keep_abandoned_jobs = False
        self._inputs: dict[str, Path] = {}
        self.rate_limited: list[float] = []  # the Retry-After waits honoured (tests read them)

    @property
    def url(self) -> str:
        return self.server

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server!r})"

    async def aclose(self) -> None:
        await self._close_session()

    # --- requests -----------------------------------------------------------------
    async def call(self, method: str, path: str, *, what: str, body: Any = None, data: bytes | None = None,
                   timeout: float | None = None) -> tuple[int, Any]:
        """One JSON call; ``(status, parsed body or error text)``. 429 waits and retries; transport errors map.
        ``data``: the request body already encoded as JSON (sent as it is), instead of ``body``."""
        url = self._base.with_path(f"{self._base.path.rstrip('/')}/{path}")
        headers = self._headers if data is None else {**self._headers, "Content-Type": "application/json"}
        limit = self.max_answer_bytes
        client_timeout = aiohttp.ClientTimeout(total=timeout or self.http_timeout)
        for _ in range(MAX_RATE_LIMITED):
            status, raw, answer_headers = await capped_request(
                self._http(), method, url, limit=limit, server=self.server, what=what,
                json=body, data=data, headers=headers, timeout=client_timeout)
            if status == 200:
                if raw is None:
                    raise TransientError(f"{self.server}: the answer to {what} exceeds {size_text(limit)}")
                return 200, parse_json(raw, f"{self.server}: the answer to {what} is not JSON")
            assert raw is not None
            if status != 429:
                return status, raw.decode("utf-8", "replace")
            wait = retry_after(answer_headers.get("Retry-After"))
            self.rate_limited.append(wait)
            await self._sleep(wait)
        raise TransientError(f"{self.server}: still rate limited (HTTP 429) after {MAX_RATE_LIMITED} tries to {what}")

    async def _json(self, method: str, path: str, what: str, *, body: Any = None, data: bytes | None = None,
                    timeout: float | None = None) -> tuple[int, Any]:
        """:meth:`call`, a refusal (HTTP 401/403) a :class:`ConfigError`."""
        status, answer = await self.call(method, path, what=what, body=body, data=data, timeout=timeout)
        if status in (401, 403):
            raise ConfigError(f"{self.server} refused to {what} (HTTP {status}){self.auth_hint}")
        return status, answer

    async def _probe(self, request: Awaitable[tuple[int, Any]]) -> tuple[int, Any]:
        """A health check's answer; failing to get one means the member is down."""
        try:
            return await request
        except TransientError as exc:
            raise ServerUnavailableError(str(exc)) from exc

    # --- jobs ---------------------------------------------------------------------
    async def cancel(self, job_id: str) -> None:
        raise NotImplementedError

    async def cancel_quietly(self, job_id: str, *, on_event: OnEvent | None = None) -> bool:
        try:
            await asyncio.wait_for(self.cancel(job_id), timeout=min(self.http_timeout, 10.0))
            return True
        except Exception as exc:  # noqa: BLE001 - the original failure matters more
            emit(on_event, job_id, "warning", {"message": f"could not cancel job {job_id} on {self.server}: {exc}"})
            return False

    @contextlib.asynccontextmanager
    async def _cancel_if_abandoned(self, job_id: str, on_event: OnEvent | None) -> AsyncIterator[None]:
        """Ctrl-C, SIGTERM, a service cancel while the job runs: free the worker (unless told to keep it)."""
        try:
            yield
        except asyncio.CancelledError:
            if not self.keep_abandoned_jobs:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self.cancel_quietly(job_id, on_event=on_event))
            raise

    def _queued(self, job_id: str, on_event: OnEvent | None, on_submit: Callable[[str, str], object] | None) -> None:
        """The job is the member's: journaled (``on_submit``) and told (``queued``)."""
        if on_submit is not None:
            on_submit(job_id, self.kind)
        emit(on_event, job_id, "queued", {"number": None, "server": self.server})

    # --- inputs -------------------------------------------------------------------
    async def upload_image(self, path: Path | str, *, name: str | None = None, subfolder: str = "",
                           overwrite: bool = False, content_addressed: bool = False) -> str:
        """Remember ``path`` under ``name``: it travels inline with the job that names it."""
        path = Path(path)
        name = check_server_name(name or path.name, "upload name", allow_slash=False)
        if not path.is_file():
            raise AssetMissingError(f"cannot send {path} to {self.server}: the file does not exist")
        self._inputs[name] = path
        return name

    def inline_images(self, graph: Mapping[str, Any]) -> list[tuple[str, bytes]]:
        """``(name, bytes)`` of every remembered file a ``LoadImage`` of ``graph`` names."""
        names = []
        for node in graph.values():
            if isinstance(node, dict) and node.get("class_type") in LOAD_IMAGE_CLASSES:
                value = (node.get("inputs") or {}).get("image")
                if isinstance(value, str) and value in self._inputs and value not in names:
                    names.append(value)
        return [(n, self._inputs[n].read_bytes()) for n in names]

    # --- outputs ------------------------------------------------------------------
    async def download(self, file_ref: Mapping[str, Any], dest: Path | str, *, max_bytes: int | None = None,
                       timeout: float | None = None) -> Path:
        """Write one inline output (base64, or an http(s) URL fetched without the key) to ``dest``, atomically,
        decoded before it is kept; :class:`DownloadError` (retryable) leaves nothing at ``dest``."""
        name = check_server_name(str(file_ref.get("filename") or ""), "filename", allow_slash=False)
        limit = int(max_bytes or self.max_download_bytes)
        data = str(file_ref.get("data") or "")
        source: Opener | bytes
        if file_ref.get("transport") == "base64":
            source = self._decode(name, data, limit)
        elif file_ref.get("transport") == "url":
            source = self._opener(name, data)
        else:
            raise UnsafePathError(f"{self.server}: output {name!r} is neither base64 nor a URL")

        async def check(resp: aiohttp.ClientResponse) -> None:
            if resp.status != 200:
                raise DownloadError(f"{self.server}: the URL of output {name} answered HTTP {resp.status}")

        return await download_checked(source, Path(dest), name=name, label=name, server=self.server, where=self.server,
                                      http_timeout=self.http_timeout, deadline=float(timeout or self.download_timeout),
                                      max_bytes=limit, verify=self.verify_downloads, check=check)

    def _decode(self, name: str, data: str, limit: int) -> bytes:
        if len(data) * 3 // 4 > limit:
            raise DownloadError(f"{self.server}: output {name} is larger than {size_text(limit)} "
                                "(the setting comfy_max_download_mb); not kept")
        try:
            body = base64.b64decode(data.split(",", 1)[1] if data.startswith("data:") else data, validate=True)
        except (binascii.Error, ValueError):
            raise DownloadError(f"{self.server}: output {name} is not valid base64; not kept") from None
        if not body:
            raise DownloadError(f"{self.server}: output {name} was empty")
        return body

    def _opener(self, name: str, url: str) -> Opener:
        """An untrusted URL from the answer: http(s) only, no credentials of ours (capped and with a deadline
        by :func:`download_checked`)."""
        try:
            parsed = yarl.URL(url)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise UnsafePathError(f"{self.server}: refusing output URL of {name} (only http and https are fetched)")
        return lambda read_timeout: self._http().get(parsed, timeout=read_timeout, allow_redirects=False)
