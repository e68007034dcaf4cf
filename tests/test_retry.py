"""Retry: the seed's schedules asserted as waits, and a table-tested retry decision."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from sceneforge.errors import (
    AssetMissingError,
    ConfigError,
    DownloadError,
    GenerationError,
    JobInterruptedError,
    JobTimeoutError,
    OutputWriteError,
    SceneValidationError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
    WorkflowError,
)
from sceneforge.retry import AUDIO_RETRY, IMAGE_RETRY, MOTION_RETRY, RetryPolicy, delay, is_retryable, retry_async


def test_policy_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AUDIO_RETRY.max_attempts = 5  # type: ignore[misc]


def test_delays_are_the_seeds():
    assert [delay(AUDIO_RETRY, k) for k in (1, 2)] == [1.0, 2.0]
    assert [delay(IMAGE_RETRY, k) for k in (1, 2)] == [3.0, 6.0]
    assert [delay(MOTION_RETRY, k) for k in (1, 2)] == [3.0, 6.0]
    assert delay(RetryPolicy(10, 1.0, 2.0, max_interval=5.0), 8) == 5.0
    j = RetryPolicy(3, 10.0, 2.0, jitter=0.1)
    assert delay(j, 1, rand=lambda: 0.0) == pytest.approx(9.0)
    assert delay(j, 1, rand=lambda: 1.0) == pytest.approx(11.0)


def test_bad_policy():
    with pytest.raises(ConfigError):
        RetryPolicy(0)


class _Resp(aiohttp.ClientResponseError):
    def __init__(self, status: int) -> None:
        super().__init__(request_info=None, history=(), status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (TransientError("busy"), True),
        (JobTimeoutError("slow"), True),
        (DownloadError("short"), True),
        (ServerUnavailableError("down"), True),
        (AssetMissingError("no file"), True),
        (GenerationError("node failed"), True),
        (TimeoutError(), True),
        (aiohttp.ClientConnectionError("reset"), True),
        (ConnectionResetError(), True),
        (_Resp(500), True),
        (_Resp(503), True),
        (_Resp(429), True),
        (_Resp(400), False),
        (_Resp(401), False),
        (_Resp(404), False),
        (SceneValidationError("scene 1: script is empty"), False),
        (WorkflowError("node 4 ..."), False),
        (ConfigError("bad"), False),
        (UnsafePathError("../x"), False),
        (JobInterruptedError("interrupted"), False),
        (OutputWriteError(28, "disk full"), False),
        (PermissionError(13, "denied"), False),
        (ValueError("bug"), False),
        (KeyError("bug"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool):
    assert is_retryable(exc) is retry


def test_generation_error_can_opt_out():
    e = GenerationError("400 from server")
    e.retryable = False  # type: ignore[attr-defined]
    assert not is_retryable(e)


async def test_retry_waits_recorded_not_slept():
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    calls = 0

    async def fn(attempt: int) -> str:
        nonlocal calls
        calls += 1
        raise TransientError(f"fail {attempt}")

    with pytest.raises(TransientError) as ei:
        await retry_async(fn, AUDIO_RETRY, sleep=sleep)
    assert waits == [1.0, 2.0] and calls == 3
    assert ei.value.attempt == 3


async def test_retry_succeeds_then_stops():
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def fn(attempt: int) -> int:
        if attempt < 2:
            raise TransientError("once")
        return attempt

    assert await retry_async(fn, IMAGE_RETRY, sleep=sleep) == 2
    assert waits == [3.0]


async def test_permanent_error_not_retried():
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    async def fn(attempt: int) -> None:
        raise WorkflowError("rejected")

    with pytest.raises(WorkflowError):
        await retry_async(fn, IMAGE_RETRY, sleep=sleep)
    assert waits == []
