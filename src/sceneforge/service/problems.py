"""The service's own errors, and every error's HTTP status, in one place.

=====================================================  ======  =====================================
what                                                   status  raised as
=====================================================  ======  =====================================
a body that is not JSON                                400     :class:`NotJson`
bad scenes or options (every problem listed)           422     ``SceneValidationError``, ``ConfigError``,
                                                               ``WorkflowError``, ``UnsafePathError``
unknown topic, scene, take or file                     404     :class:`UnknownTopic` (an ``AssetMissingError``)
the topic has a job, another run holds it, or it
belongs to another topic                               409     :class:`TopicBusy`, ``OutputLockedError``,
                                                               ``TopicConflictError``
the queue is full, or the service is stopping          429     :class:`QueueFull` (a ``ServerUnavailableError``)
anything else of sceneforge's                          500
=====================================================  ======  =====================================

403 (another origin), 413 (too big), 415 (not JSON), 421 (another host) and 401 (no
token) come from the middlewares, before any route (:mod:`.guard`, :mod:`.auth`).
Each answer is ``{"detail"}``, plus ``problems`` (one line each) for 400 and 422; paths
under the output folder are said relative to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from .. import (
    AssetMissingError,
    ConfigError,
    OutputLockedError,
    SceneforgeError,
    SceneValidationError,
    ServerUnavailableError,
    TopicConflictError,
    UnsafePathError,
    WorkflowError,
    error_text,
)
from .files import relative_paths

__all__ = ["NotJson", "UnknownTopic", "TopicBusy", "QueueFull", "status_of", "problem_lines", "error_response",
           "STATUS"]


class NotJson(SceneValidationError):
    """A request body that is not JSON text at all (400, not 422)."""


class UnknownTopic(AssetMissingError):
    """No such topic (or scene, take, file of it)."""


class TopicBusy(OutputLockedError):
    """The topic has a job queued or running, or a request is changing it."""


class QueueFull(ServerUnavailableError):
    """The queue holds ``serve_max_queued`` jobs (or the service is stopping): try again later."""


#: The status of each kind of error (the most specific class that matches wins).
STATUS: dict[type[SceneforgeError], int] = {
    NotJson: 400,
    SceneValidationError: 422,
    ConfigError: 422,
    WorkflowError: 422,
    UnsafePathError: 422,
    AssetMissingError: 404,
    OutputLockedError: 409,
    TopicConflictError: 409,
    ServerUnavailableError: 429,
    SceneforgeError: 500,
}


def status_of(exc: SceneforgeError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem_lines(exc: SceneforgeError, out_dir: Path | None = None) -> list[str]:
    """The error's problems, one a line (a validation error's list, else its text's lines), paths under
    ``out_dir`` said relative to it: a client never learns where the service keeps its files."""
    problems = list(exc.problems) if isinstance(exc, SceneValidationError) else error_text(exc).splitlines()
    return problems if out_dir is None else [relative_paths(p, out_dir) for p in problems]


def error_response(exc: SceneforgeError, out_dir: Path | None = None) -> JSONResponse:
    """The JSON answer for one of sceneforge's errors (its :func:`problem_lines`)."""
    status = status_of(exc)
    problems = problem_lines(exc, out_dir)
    detail = problems[0] if len(problems) == 1 else f"{len(problems)} problems in the input"
    body: dict[str, Any] = {"detail": detail}
    if status in (400, 422):
        body["problems"] = problems
    headers = {"Retry-After": "5"} if status == 429 else None
    return JSONResponse(body, status_code=status, headers=headers)
