"""Retry per scene: an immutable policy, a pure delay function, a pure retry decision.

Sleep is injected so tests assert the waits instead of waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ConfigError, SceneforgeError

__all__ = ["RetryPolicy", "AUDIO_RETRY", "IMAGE_RETRY", "MOTION_RETRY", "delay", "is_retryable", "exhausted", "retry_async"]

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


#: The original system's schedules: audio waits 1 s then 2 s; images and motion 3 s then 6 s.
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

    sceneforge's own errors say so with their class attribute ``retryable``
    (permanent: bad input, a rejected workflow, an interrupted job, unsafe paths;
    transient: timeouts, dropped connections, 5xx, truncated downloads, unreachable
    servers). Third-party errors are translated at the boundary where they occur; the
    few builtins that may still arrive here are judged by kind: time-outs and broken
    connections are worth a retry, a full or read-only disk is not.
    """
    if isinstance(exc, SceneforgeError):
        return type(exc).retryable
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return False


#: The note :func:`retry_async` adds when it gives up on a retryable failure.
GAVE_UP = "gave up after {attempts} attempt{s}"


def exhausted(exc: BaseException) -> bool:
    """True when ``exc`` already went through a per-scene retry loop that gave up on it."""
    return any(note.startswith("gave up after ") for note in getattr(exc, "__notes__", ()))


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
            if not retryable(exc):
                raise
            if attempt >= policy.max_attempts:
                # Said once, so an outer retry layer (a LangGraph node policy) does not multiply attempts.
                if not exhausted(exc):
                    exc.add_note(GAVE_UP.format(attempts=attempt, s="" if attempt == 1 else "s"))
                raise
            wait = delay(policy, attempt)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await sleep(wait)
            attempt += 1
