"""Webhooks: tell a caller's URL that a job ended, without ever holding up the queue.

When a job that was given ``options.webhook_url`` ends (``done``, ``failed`` or
``cancelled``), the service POSTs ``{"slug", "status", "error"}`` there. With
``SCENEFORGE_WEBHOOK_SECRET`` set, the body is signed: ``X-Sceneforge-Signature:
sha256=<hex HMAC-SHA256 of the exact body bytes>``, which the receiver recomputes
with the same secret (compare in constant time). Each delivery runs as its own
task: a slow or dead receiver never delays the next job. Network failures, 429
and 5xx answers are retried with backoff (1 s, 2 s, 4 s, 8 s: five attempts);
other answers are final. The wait is injected, so tests record it instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..errors import PermanentError, TransientError
from ..retry import RetryPolicy, is_retryable, retry_async

__all__ = ["WebhookSender", "WEBHOOK_RETRY", "SIGNATURE_HEADER", "sign"]

log = logging.getLogger("sceneforge.service")

WEBHOOK_RETRY = RetryPolicy(max_attempts=5, initial_interval=1.0, backoff_factor=2.0)
SIGNATURE_HEADER = "X-Sceneforge-Signature"
_TIMEOUT = aiohttp.ClientTimeout(total=10)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Deliveries in flight, each a task; :meth:`aclose` ends them (the service is stopping)."""

    def __init__(self, *, secret: str | None = None, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 policy: RetryPolicy = WEBHOOK_RETRY) -> None:
        self._secret = secret
        self._sleep = sleep
        self.policy = policy
        self._tasks: set[asyncio.Task[bool]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, url: str, payload: dict[str, Any]) -> asyncio.Task[bool]:
        """Start delivering ``payload`` to ``url`` in the background; returns the task (True when delivered)."""
        task = asyncio.get_running_loop().create_task(self._deliver(url, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(self, url: str, payload: dict[str, Any]) -> bool:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "sceneforge"}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            await retry_async(lambda attempt: self._post(url, body, headers), self.policy, sleep=self._sleep,
                              retryable=is_retryable)
            return True
        except Exception as exc:  # noqa: BLE001 - a webhook that cannot be delivered is logged, never raised
            log.warning("webhook for %s not delivered: %s", payload.get("slug"), exc)
            return False

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientError(f"webhook {url}: {type(exc).__name__}: {exc}") from None
        if status == 429 or status >= 500:
            raise TransientError(f"webhook {url} answered {status}")
        if status >= 300:
            raise PermanentError(f"webhook {url} answered {status}")

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
