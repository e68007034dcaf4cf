"""Translate what a ComfyUI server says into sceneforge's exception tree.

Pure functions over already-parsed bodies, so every mapping is table-testable
without a server. The shapes are the recorded ones in
``comfyui/samples/errors/`` (POST /prompt) and ``runtime_error/`` (websocket).
Nothing here ever sees a credential: callers pass the *redacted* server URL.
aiohttp is imported only by the two functions that classify its exceptions, so the
pure job tracker (``watch.py``) can use this module without pulling in any I/O.
"""

from __future__ import annotations

import errno
import ssl
from typing import Any

from ...errors import (
    ConfigError,
    GenerationError,
    JobInterruptedError,
    PermanentError,
    ServerUnavailableError,
    TransientError,
    WorkflowError,
)
from .result import dict_of

__all__ = [
    "node_error_lines",
    "workflow_error",
    "execution_error",
    "interrupted_error",
    "describe_cause",
    "connection_error",
    "status_error",
]

#: How much of a non-JSON error body ends up in a message (bodies can be HTML pages).
_BODY_EXCERPT = 200


def _one_error_text(err: dict[str, Any]) -> str:
    """One node error as a short phrase, from its ``message``/``details``/``extra_info``.

    The server's wording differs per error type: ``value_not_in_list`` puts the
    whole story in ``details`` ("ckpt_name: 'x' not in []"), range errors put it
    in ``message`` and only the input name in ``details``.
    """
    message = str(err.get("message") or err.get("type") or "invalid").strip()
    details = str(err.get("details") or "").strip()
    extra = dict_of(err.get("extra_info"))
    input_name = str(extra.get("input_name") or "")
    if input_name and details == input_name:
        return f"{input_name}: {message}"
    if input_name and details.startswith(f"{input_name}:"):
        return details
    if details:
        return f"{message}: {details}"
    return message


def node_error_lines(body: dict[str, Any]) -> dict[str, list[str]]:
    """``node_errors`` of a POST /prompt answer as node id -> one line per error.

    A line reads ``node 4 CheckpointLoaderSimple: ckpt_name: 'x.safetensors' not in []``.
    A top-level ``error`` that names a node (``missing_node_type``) is listed under
    that node; one that names none goes under the key ``""``.
    """
    out: dict[str, list[str]] = {}
    node_errors = body.get("node_errors")
    if isinstance(node_errors, dict):
        for node_id, info in node_errors.items():
            if not isinstance(info, dict):
                continue
            class_type = info.get("class_type") or "?"
            errors = info.get("errors") or []
            lines = [f"node {node_id} {class_type}: {_one_error_text(e)}" for e in errors if isinstance(e, dict)]
            out[str(node_id)] = lines or [f"node {node_id} {class_type}: invalid"]
    if not out:
        top = body.get("error")
        if isinstance(top, dict):
            extra = dict_of(top.get("extra_info"))
            message = str(top.get("message") or top.get("type") or "rejected").strip()
            node_id = extra.get("node_id")
            if node_id is not None:
                class_type = extra.get("class_type") or "?"
                out[str(node_id)] = [f"node {node_id} {class_type}: {message}"]
            else:
                details = str(top.get("details") or "").strip()
                text = f"{message}: {details}" if details and details != message else message
                out[""] = [text]
        elif isinstance(top, str) and top:
            out[""] = [top]
    return out


def workflow_error(body: dict[str, Any] | str, server: str, *, partial: bool = False) -> WorkflowError:
    """A :class:`WorkflowError` for a rejected (or only partly accepted) prompt."""
    if isinstance(body, str):
        text = body.strip()[:_BODY_EXCERPT] or "no details"
        return WorkflowError(f"ComfyUI at {server} rejected the workflow: {text}")
    per_node = node_error_lines(body)
    lines = [line for group in per_node.values() for line in group] or ["no details given"]
    if partial:
        head = (
            f"ComfyUI at {server} accepted only part of the workflow; "
            "these nodes failed validation (every output is needed):"
        )
    else:
        head = f"ComfyUI at {server} rejected the workflow:"
    return WorkflowError(head + "\n" + "\n".join(f"  {line}" for line in lines), per_node)


def execution_error(data: dict[str, Any], server: str) -> GenerationError:
    """The websocket/history ``execution_error`` dict as a :class:`GenerationError`.

    Left retryable (the default): out-of-memory and similar failures can pass,
    and the stage's retry budget is small.
    """
    node_id = str(data.get("node_id")) if data.get("node_id") is not None else None
    node_type = data.get("node_type") or None
    exc_type = str(data.get("exception_type") or "error")
    exc_msg = str(data.get("exception_message") or "").strip()
    where = f"node {node_id or '?'} {node_type or '?'}"
    prompt_id = data.get("prompt_id")
    return GenerationError(
        f"{where}: {exc_type}: {exc_msg} (ComfyUI at {server}, prompt {prompt_id})",
        node_id=node_id,
        node_type=node_type,
        server_message=exc_msg,
    )


def interrupted_error(data: dict[str, Any], server: str) -> JobInterruptedError:
    """``execution_interrupted`` as a :class:`JobInterruptedError` (someone chose to stop it)."""
    node_id = str(data.get("node_id")) if data.get("node_id") is not None else None
    node_type = data.get("node_type") or None
    where = f" at node {node_id} {node_type or '?'}" if node_id else ""
    return JobInterruptedError(
        f"ComfyUI job {data.get('prompt_id')} was interrupted on {server}{where}",
        node_id=node_id,
        node_type=node_type,
    )


def describe_cause(exc: BaseException) -> str:
    """A short, secret-free phrase for a low-level failure ("connection refused").

    aiohttp's own messages are avoided on purpose: they are long and vary by version.
    """
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not resolved"
    if isinstance(exc, (aiohttp.ClientConnectorSSLError, aiohttp.ClientSSLError, ssl.SSLError)):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_err = exc.os_error
        # Happy-eyeballs failures over several addresses arrive as one plain OSError
        # ("Multiple exceptions: [Errno 111] ..."), hence the text check.
        if isinstance(os_err, ConnectionRefusedError) or f"[Errno {errno.ECONNREFUSED}]" in str(os_err):
            return "connection refused"
        if isinstance(os_err, TimeoutError):
            return "connect timed out"
        return f"cannot connect ({type(os_err).__name__})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response ended early"
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return "timed out"
    if isinstance(exc, (aiohttp.ClientConnectionResetError, ConnectionResetError)):
        return "connection reset"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"websocket handshake refused (HTTP {exc.status})"
    return type(exc).__name__


def connection_error(exc: BaseException, server: str, what: str) -> ServerUnavailableError | TransientError:
    """Map an aiohttp/OS failure while doing ``what``.

    Could not connect at all -> :class:`ServerUnavailableError` (the pool moves work
    off such a server); connected but the exchange broke -> :class:`TransientError`.
    Both are retryable.
    """
    import aiohttp

    cause = describe_cause(exc)
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return ServerUnavailableError(f"ComfyUI at {server} is unreachable ({cause}) while trying to {what}")
    return TransientError(f"ComfyUI at {server}: {what} failed: {cause}")


def status_error(status: int, body: str, server: str, what: str) -> Exception:
    """An unexpected HTTP status while doing ``what``.

    401/403 are a configuration problem (credentials, headers): not retried.
    404 means the URL does not point at a ComfyUI API. 5xx and 429 are transient.
    """
    excerpt = " ".join(body.split())[:_BODY_EXCERPT]
    suffix = f": {excerpt}" if excerpt else ""
    if status in (401, 403):
        return ConfigError(
            f"ComfyUI at {server} refused to {what} (HTTP {status}); "
            "check comfy_headers and the user:password in the URL"
        )
    if status == 404:
        return ConfigError(f"ComfyUI at {server} has no API to {what} (HTTP 404); check the URL")
    if status >= 500 or status in (408, 429):
        return TransientError(f"ComfyUI at {server}: {what} failed with HTTP {status}{suffix}")
    # Other 4xx answers will not change on retry.
    return PermanentError(f"ComfyUI at {server}: {what} failed with HTTP {status}{suffix}", status=status)
