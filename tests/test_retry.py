"""Retry: the original system's schedules asserted as waits, and a table-tested retry decision."""

from __future__ import annotations

import dataclasses
import inspect

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
    PermanentError,
    SceneValidationError,
    ServerUnavailableError,
    TransientError,
    UnsafePathError,
    WorkflowError,
)
from sceneforge.retry import (
    AUDIO_RETRY,
    IMAGE_RETRY,
    MOTION_RETRY,
    RetryPolicy,
    delay,
    exhausted,
    is_retryable,
    retry_async,
)


def test_policy_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        AUDIO_RETRY.max_attempts = 5  # type: ignore[misc]


def test_delays_are_the_original_systems():
    assert [delay(AUDIO_RETRY, k) for k in (1, 2)] == [1.0, 2.0]
    assert [delay(IMAGE_RETRY, k) for k in (1, 2)] == [3.0, 6.0]
    assert [delay(MOTION_RETRY, k) for k in (1, 2)] == [3.0, 6.0]
    assert delay(RetryPolicy(10, 1.0, 2.0, max_interval=5.0), 8) == 5.0
    j = RetryPolicy(3, 10.0, 2.0, jitter=0.1)
    assert delay(j, 1, rand=lambda: 0.0) == pytest.approx(9.0)
    assert delay(j, 1, rand=lambda: 1.0) == pytest.approx(11.0)


def test_bad_policy():
    with pytest.raises(ConfigError, match="max_attempts must be at least 1"):
        RetryPolicy(0)


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
        (ConnectionResetError(), True),
        (PermanentError("HTTP 400", status=400), False),
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


def test_retryable_is_a_class_attribute_and_retry_knows_no_transport():
    assert GenerationError.retryable and not PermanentError.retryable and not WorkflowError.retryable
    assert issubclass(PermanentError, GenerationError) and issubclass(PermanentError, RuntimeError)
    # Third-party errors are translated where they happen; the retry decision never sees them.
    import sceneforge.retry as retry_module

    assert "aiohttp" not in inspect.getsource(retry_module)
    assert not is_retryable(aiohttp.ClientResponseError(None, (), status=503))  # type: ignore[arg-type]


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
    assert ei.value.__notes__ == ["gave up after 3 attempts"] and exhausted(ei.value)


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
