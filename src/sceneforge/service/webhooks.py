"""Webhooks: tell a caller's URL that a job ended, without ever holding up the queue.

When a job that was given ``options.webhook_url`` ends (``done``, ``failed`` or
``cancelled``), the service POSTs ``{"slug", "status", "error"}`` there, once per
status change (:mod:`.jobs` sends it from its one guarded transition).

Signatures follow the Standard Webhooks convention (standardwebhooks.com), so a
receiver can use its libraries and refuse replays: with ``SCENEFORGE_WEBHOOK_SECRET``
set, every delivery carries ``webhook-id`` (the same on every retry of one message,
to drop duplicates), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. A secret written as
``whsec_<base64>`` is used as those decoded bytes, any other as its UTF-8 bytes. The
older ``X-Sceneforge-Signature: sha256=<hex HMAC of the body>`` is sent too.

Where a webhook may go is :mod:`.targets`' rule, checked again on the addresses the
connection is made to; redirects are never followed. A URL's credentials are never
logged. Each delivery runs as its own task: a slow or dead receiver never delays the
next job. Network failures, 429 and 5xx answers are retried with backoff (1 s, 2 s,
4 s, 8 s: five attempts); other answers are final. The wait and the clock are
injected, so tests record them instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .. import PermanentError, RetryPolicy, TransientError
from ..pipeline import is_retryable, redact_url, retry_async
from .targets import GuardedResolver, TargetRefused, WebhookTargets, address, endpoint

__all__ = ["WebhookSender", "WEBHOOK_RETRY", "SIGNATURE_HEADER", "sign", "sign_standard"]

log = logging.getLogger("sceneforge.service")

WEBHOOK_RETRY = RetryPolicy(max_attempts=5, initial_interval=1.0, backoff_factor=2.0)
SIGNATURE_HEADER = "X-Sceneforge-Signature"
_TIMEOUT = aiohttp.ClientTimeout(total=10)


def sign(secret: str, body: bytes) -> str:
    """The older ``X-Sceneforge-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        with contextlib.suppress(ValueError):
            return base64.b64decode(secret[len("whsec_"):], validate=True)
    return secret.encode("utf-8")


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


class WebhookSender:
    """Deliveries in flight, each a task; :meth:`aclose` ends them (the service is stopping)."""

    def __init__(self, *, secret: str | None = None, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 policy: RetryPolicy = WEBHOOK_RETRY, targets: WebhookTargets | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._sleep = sleep
        self._clock = clock
        self.policy = policy
        self.targets = targets or WebhookTargets()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, url: str, payload: dict[str, Any], msg_id: str) -> asyncio.Task[bool]:
        """Start delivering ``payload`` to ``url`` in the background as message ``msg_id``; returns the task
        (True when delivered)."""
        task = asyncio.get_running_loop().create_task(self._deliver(url, payload, msg_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "sceneforge", "webhook-id": msg_id}
        stamp = int(self._clock())
        headers["webhook-timestamp"] = str(stamp)
        if self._secret:
            headers["webhook-signature"] = sign_standard(self._secret, msg_id, stamp, body)
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        return headers

    async def _deliver(self, url: str, payload: dict[str, Any], msg_id: str) -> bool:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            await retry_async(lambda attempt: self._post(url, body, self._headers(msg_id, body)), self.policy,
                              sleep=self._sleep, retryable=is_retryable)
            return True
        except Exception as exc:  # noqa: BLE001 - a webhook that cannot be delivered is logged, never raised
            log.warning("webhook for %s not delivered: %s", payload.get("slug"), exc)
            return False

    def _refuse_literal(self, url: str) -> None:
        """aiohttp asks no resolver for an IP literal: check it here."""
        host, port = endpoint(url)
        try:
            ip = address(host)
        except ValueError:
            return
        why = self.targets.refusal(host, ip, port)
        if why:
            raise PermanentError(f"webhook {redact_url(url)} refused: {why}")

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.targets), use_dns_cache=False)
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT, connector=connector, trust_env=False)
        return self._session

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        self._refuse_literal(url)
        shown = redact_url(url)
        try:
            async with self._open().post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
        except (OSError, aiohttp.ClientError) as exc:  # TimeoutError is an OSError
            refused = next((e for e in (exc, exc.__cause__, exc.__context__) if isinstance(e, TargetRefused)), None)
            if refused is not None:  # the guarded resolver's: no retry can change it
                raise PermanentError(f"webhook {shown}: {refused}") from None
            detail = f": {exc}" if isinstance(exc, OSError) else ""
            raise TransientError(f"webhook {shown}: {type(exc).__name__}{detail}") from None
        if status == 429 or status >= 500:
            raise TransientError(f"webhook {shown} answered {status}")
        if status >= 300:
            raise PermanentError(f"webhook {shown} answered {status}")

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
