"""One exception tree for sceneforge.

Every class derives from :class:`SceneforgeError` and *also* from the builtin the
original specification names, so ``except ValueError`` / ``except RuntimeError`` /
``except FileNotFoundError`` written against the original system keeps working::

    SceneforgeError
    ├── SceneValidationError (ValueError)    bad input scenes; ``problems`` = one line each
    ├── ConfigError (ValueError)             a setting, flag or backend option is invalid
    │   └── TopicConflictError               the topic folder belongs to another topic
    ├── UnsafePathError (ValueError)         a name would escape its folder
    ├── WorkflowError (ValueError)           a workflow is malformed or the server rejected it
    ├── AssetMissingError (FileNotFoundError)        an asset that should exist does not   [retryable]
    │   └── InputFileMissingError            a file the input names is missing; ``problems``
    ├── ServerUnavailableError (RuntimeError)        a server cannot be reached            [retryable]
    ├── GenerationError (RuntimeError)       generating one asset failed                   [retryable]
    │   ├── PermanentError                   the same request will fail again (bad voice, 4xx)
    │   ├── JobInterruptedError              someone stopped the job on the server
    │   ├── RenderCancelledError             the caller cancelled a render (compose)
    │   └── TransientError                   busy, 5xx, dropped connection
    │       ├── JobTimeoutError              a job or call ran past its time limit
    │       └── DownloadError                a download was cut short, too big, or not a valid file
    ├── OutputLockedError (RuntimeError)     another run is writing the same topic
    └── OutputWriteError (OSError)           the output folder cannot be written

Whether a failure is worth another attempt is the class attribute ``retryable``
(read by :func:`sceneforge.retry.is_retryable`), never an attribute set at run time.
Context (which scene, which stage, what else failed) is added with
:meth:`BaseException.add_note`; :func:`error_text` renders an error with its notes
the way the command line prints it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

__all__ = [
    "SceneforgeError",
    "SceneValidationError",
    "ConfigError",
    "TopicConflictError",
    "UnsafePathError",
    "AssetMissingError",
    "InputFileMissingError",
    "ServerUnavailableError",
    "WorkflowError",
    "GenerationError",
    "PermanentError",
    "TransientError",
    "JobInterruptedError",
    "RenderCancelledError",
    "JobTimeoutError",
    "DownloadError",
    "OutputLockedError",
    "OutputWriteError",
    "add_scene_context",
    "scene_of",
    "error_text",
    "describe",
    "format_problems",
]


class SceneforgeError(Exception):
    """Root of every error sceneforge raises on purpose."""

    #: Worth another attempt with the same request? Read by :func:`sceneforge.retry.is_retryable`.
    retryable: ClassVar[bool] = False


class SceneValidationError(SceneforgeError, ValueError):
    """The input scenes are unusable. ``problems`` holds one line per problem,
    each naming the scene (``scene N``) and the field."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(SceneforgeError, ValueError):
    """A setting (flag, environment variable or sceneforge.toml) is invalid."""


class TopicConflictError(ConfigError):
    """Two different topics would share one output folder (``C++ tips`` and ``C tips``)."""


class UnsafePathError(SceneforgeError, ValueError):
    """A name would escape the folder it must stay in (``..``, separators, absolute paths)."""


class AssetMissingError(SceneforgeError, FileNotFoundError):
    """An asset that should exist on disk does not (or is empty)."""

    retryable = True  # the engine said it succeeded but wrote nothing: another try may work


class InputFileMissingError(AssetMissingError):
    """Files the input names do not exist (motion's ``image_path`` when the run makes no images):
    bad input, found before any work. Still a FileNotFoundError, as the original system raised.
    ``problems`` holds one line per scene."""

    retryable = False

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class ServerUnavailableError(SceneforgeError, RuntimeError):
    """A server (ComfyUI, a TTS endpoint) cannot be reached."""

    retryable = True


class WorkflowError(SceneforgeError, ValueError):
    """A workflow is malformed or the server rejected it. Never retried.

    ``node_errors`` maps node id -> list of one-line messages.
    """

    def __init__(self, message: str, node_errors: dict[str, list[str]] | None = None) -> None:
        self.node_errors: dict[str, list[str]] = dict(node_errors or {})
        super().__init__(message)


class GenerationError(SceneforgeError, RuntimeError):
    """Generating one asset failed.

    Carries, when known, the server's node id and type, its message and the HTTP status.
    Retryable by default: out-of-memory and similar failures can pass.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        node_type: str | None = None,
        server_message: str | None = None,
        status: int | None = None,
    ) -> None:
        self.node_id = node_id
        self.node_type = node_type
        self.server_message = server_message
        self.status = status
        super().__init__(message)


class PermanentError(GenerationError):
    """A failure the same request will meet again (a rejected key, an unknown voice, a 4xx answer)."""

    retryable = False


class TransientError(GenerationError):
    """A failure worth retrying (server busy, 5xx, dropped connection, truncated download)."""


class JobInterruptedError(GenerationError):
    """The ComfyUI job was interrupted on the server (execution_interrupted): someone chose to stop it."""

    retryable = False


class RenderCancelledError(GenerationError):
    """A render (``sceneforge compose``) was cancelled by its caller; its ffmpeg is stopped, nothing is kept."""

    retryable = False


class JobTimeoutError(TransientError):
    """A job or call did not finish within its time limit."""


class DownloadError(TransientError):
    """A download ended early, was larger than allowed, or is not a valid file of its kind."""


class OutputLockedError(SceneforgeError, RuntimeError):
    """Another sceneforge run is writing the same topic folder."""


class OutputWriteError(SceneforgeError, OSError):
    """The output folder cannot be written (disk full, read-only)."""


# --------------------------------------------------------------------------- context and display

_SCENE_NOTE = re.compile(r"^scene (\d+) \((\w+)\)$")


def add_scene_context(exc: BaseException, scene: int, stage: str) -> BaseException:
    """Note which scene and stage ``exc`` belongs to, unless its message already says so."""
    text = str(exc)
    if f"scene {scene}" not in text and not any(_SCENE_NOTE.match(n) for n in getattr(exc, "__notes__", ())):
        exc.add_note(f"scene {scene} ({stage})")
    return exc


def scene_of(exc: BaseException) -> tuple[int, str] | None:
    """The ``(scene, stage)`` noted by :func:`add_scene_context`, if any."""
    for note in getattr(exc, "__notes__", ()):
        m = _SCENE_NOTE.match(note)
        if m:
            return int(m.group(1)), m.group(2)
    return None


def error_text(exc: BaseException) -> str:
    """The error as a person should read it: ``scene 3 (image): <message>`` and then its other notes."""
    head = str(exc) or type(exc).__name__
    notes = list(getattr(exc, "__notes__", ()))
    scene_notes = [n for n in notes if _SCENE_NOTE.match(n)]
    if scene_notes:
        head = f"{scene_notes[0]}: {head}"
    rest = [n for n in notes if n not in scene_notes[:1]]
    return "\n".join([head, *rest])


def format_problems(problems: Iterable[str]) -> str:
    """Join problem lines for display."""
    return "\n".join(f"  - {p}" for p in problems)


def describe(exc: BaseException) -> dict[str, Any]:
    """A small JSON-able description of an exception, for events."""
    out: dict[str, Any] = {"type": type(exc).__name__, "message": error_text(exc),
                           "retryable": bool(getattr(exc, "retryable", False))}
    where = scene_of(exc)
    if where is not None:
        out["scene"], out["stage"] = where
    for attr in ("node_id", "node_type", "status"):
        val = getattr(exc, attr, None)
        if val is not None:
            out[attr] = val
    return out
