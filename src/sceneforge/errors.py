"""One exception tree for sceneforge.

Every class derives from :class:`SceneforgeError` and *also* from the builtin the
original specification names, so ``except ValueError`` / ``except RuntimeError`` /
``except FileNotFoundError`` written against the seed keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "SceneforgeError",
    "SceneValidationError",
    "ConfigError",
    "UnsafePathError",
    "AssetMissingError",
    "ServerUnavailableError",
    "WorkflowError",
    "GenerationError",
    "TransientError",
    "JobInterruptedError",
    "JobTimeoutError",
    "DownloadError",
    "OutputLockedError",
    "OutputWriteError",
]


class SceneforgeError(Exception):
    """Root of every error sceneforge raises on purpose."""


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


class UnsafePathError(SceneforgeError, ValueError):
    """A name would escape the folder it must stay in (``..``, separators, absolute paths)."""


class AssetMissingError(SceneforgeError, FileNotFoundError):
    """An asset that should exist on disk does not (or is empty)."""


class ServerUnavailableError(SceneforgeError, RuntimeError):
    """A server (ComfyUI, a TTS endpoint) cannot be reached."""


class WorkflowError(SceneforgeError, ValueError):
    """A workflow is malformed or the server rejected it. Never retried.

    ``node_errors`` maps node id -> list of one-line messages.
    """

    def __init__(self, message: str, node_errors: dict[str, list[str]] | None = None) -> None:
        self.node_errors: dict[str, list[str]] = dict(node_errors or {})
        super().__init__(message)


class GenerationError(SceneforgeError, RuntimeError):
    """Generating one asset failed.

    Carries the scene number, the stage, the attempt and the server's message, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        scene: int | None = None,
        stage: str | None = None,
        attempt: int | None = None,
        node_id: str | None = None,
        node_type: str | None = None,
        server_message: str | None = None,
    ) -> None:
        self.scene = scene
        self.stage = stage
        self.attempt = attempt
        self.node_id = node_id
        self.node_type = node_type
        self.server_message = server_message
        super().__init__(message)

    def for_scene(self, scene: int, stage: str, attempt: int | None = None) -> GenerationError:
        """Fill in scene/stage/attempt when a lower layer raised without them."""
        if self.scene is None:
            self.scene = scene
        if self.stage is None:
            self.stage = stage
        if attempt is not None:
            self.attempt = attempt
        return self


class TransientError(GenerationError):
    """A failure worth retrying (server busy, 5xx, dropped connection, truncated download)."""


class JobInterruptedError(GenerationError):
    """The ComfyUI job was interrupted on the server (execution_interrupted)."""


class JobTimeoutError(TransientError):
    """A job or call did not finish within its time limit."""


class DownloadError(TransientError):
    """A download ended early or had the wrong length."""


class OutputLockedError(SceneforgeError, RuntimeError):
    """Another sceneforge run is writing the same topic folder."""


class OutputWriteError(SceneforgeError, OSError):
    """The output folder cannot be written (disk full, read-only)."""


def format_problems(problems: Iterable[str]) -> str:
    """Join problem lines for display."""
    return "\n".join(f"  - {p}" for p in problems)


def describe(exc: BaseException) -> dict[str, Any]:
    """A small JSON-able description of an exception, for events."""
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for attr in ("scene", "stage", "attempt", "node_id", "node_type"):
        val = getattr(exc, attr, None)
        if val is not None:
            out[attr] = val
    return out
