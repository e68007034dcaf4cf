"""Retry per scene: an immutable policy, a pure delay function, a pure retry decision.

Sleep is injected so tests assert the waits instead of waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from .errors import (
    AssetMissingError,
    ConfigError,
    GenerationError,
    JobInterruptedError,
    SceneValidationError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
    WorkflowError,
)

__all__ = ["RetryPolicy", "AUDIO_RETRY", "IMAGE_RETRY", "MOTION_RETRY", "delay", "is_retryable", "retry_async"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. ``max_attempts`` counts the first try."""

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff_factor: float = 2.0
    max_interval: float = 60.0
    jitter: float = 0.0  # fraction of the delay, e.g. 0.1 for +-10 %

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if self.initial_interval < 0 or self.backoff_factor < 1 or self.max_interval < 0:
            raise ConfigError("retry intervals must be >= 0 and backoff_factor >= 1")


#: The seed's schedules: audio waits 1 s then 2 s; images and motion 3 s then 6 s.
AUDIO_RETRY = RetryPolicy(3, 1.0, 2.0)
IMAGE_RETRY = RetryPolicy(3, 3.0, 2.0)
MOTION_RETRY = RetryPolicy(3, 3.0, 2.0)


def delay(policy: RetryPolicy, failed_attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after attempt number ``failed_attempt`` (1-based) failed."""
    base = policy.initial_interval * policy.backoff_factor ** (failed_attempt - 1)
    base = min(base, policy.max_interval)
    if policy.jitter:
        base *= 1 + policy.jitter * (2 * rand() - 1)
    return base


def is_retryable(exc: BaseException) -> bool:
    """Whether a failure is worth another attempt.

    Permanent: bad input, a rejected workflow, an interrupted job (someone chose
    to stop it), unsafe paths, programming errors. Transient: timeouts, dropped
    connections, 5xx, truncated downloads, unreachable servers mid-run.
    """
    if isinstance(exc, (SceneValidationError, WorkflowError, ConfigError, UnsafePathError, JobInterruptedError)):
        return False
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, ServerUnavailableError):
        return True
    if isinstance(exc, AssetMissingError):
        # The engine said it succeeded but wrote nothing: another try may work.
        return True
    if isinstance(exc, GenerationError):
        return getattr(exc, "retryable", True)
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in (408, 409, 425, 429) or exc.status >= 500
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, OSError):
        # Disk full / read-only output is not fixed by waiting.
        return False
    return False


async def retry_async(
    fn: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_retry: Callable[[int, BaseException, float], object] | None = None,
    retryable: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """Call ``fn(attempt)`` until it succeeds, a permanent error occurs, or attempts run out."""
    attempt = 1
    while True:
        try:
            return await fn(attempt)
        except Exception as exc:
            if attempt >= policy.max_attempts or not retryable(exc):
                if isinstance(exc, GenerationError) and exc.attempt is None:
                    exc.attempt = attempt
                # Mark it so an outer retry layer (a LangGraph node policy) does not multiply attempts.
                try:
                    exc.sceneforge_retried = True  # type: ignore[attr-defined]
                except AttributeError:  # pragma: no cover - exceptions with __slots__
                    pass
                raise
            wait = delay(policy, attempt)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await sleep(wait)
            attempt += 1
