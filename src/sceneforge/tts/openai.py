"""Narration from an OpenAI-compatible speech endpoint (OpenAI, Kokoro-FastAPI, LocalAI, ...).

``POST {base_url}/audio/speech`` with ``{"model", "input", "voice",
"response_format": "mp3", "speed"}``; the response body is the MP3. These
servers give no timings, so there are no cues.

The API key lives only in ``options.api_key`` (a ``SecretStr``) and the
``Authorization`` header: it is kept out of messages (server replies are
scrubbed too), ``repr`` and the fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import ConfigDict, SecretStr, field_validator

from ..config import redact_url
from ..errors import GenerationError, JobTimeoutError, PermanentError, TransientError
from ..events import Reporter, null_report
from ..fsutil import atomic_path
from .base import SpeechRequest, SpeechResult, TTSBackend, TTSOptions, mp3_duration

if TYPE_CHECKING:
    from ..backend import BackendResources
    from ..config import Settings

__all__ = ["OpenAIOptions", "OpenAIBackend"]

MIN_SPEED, MAX_SPEED = 0.25, 4.0  # the API's accepted range
_CHUNK = 64 * 1024
_MAX_ERROR_CHARS = 300


class OpenAIOptions(TTSOptions):
    """Endpoint, key, model and voice. ``rate`` is sent as ``speed`` (clamped to 0.25..4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voice: str = "alloy"
    model: str = "tts-1"
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("the OpenAI base URL must start with http:// or https://")
        return v.rstrip("/")


def _permanent(message: str, status: int | None = None, server_message: str | None = None) -> GenerationError:
    """A failure another attempt will not fix (bad voice/model, rejected key, not MP3)."""
    return PermanentError(message, server_message=server_message, status=status)


def _server_message(body: str) -> str:
    """The human part of an error body: OpenAI's ``error.message``, FastAPI's ``detail``, else the text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if "detail" in data:
            return str(data["detail"])
    return body


class OpenAIBackend(TTSBackend):
    """An OpenAI-compatible ``/audio/speech`` server (one aiohttp session per instance)."""

    name = "openai"
    Options = OpenAIOptions
    options: OpenAIOptions
    max_concurrency = 4

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        super().__init__(options)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> OpenAIBackend:
        """Base URL, key, model, voice (default ``alloy``), rate and timeout from the settings."""
        kw: dict[str, Any] = {
            "rate": settings.rate,
            "timeout": settings.tts_timeout,
            "base_url": settings.openai_base_url,
            "api_key": settings.openai_api_key,
            "model": settings.openai_model,
        }
        if settings.voice:
            kw["voice"] = settings.voice
        return cls(OpenAIOptions(**kw))

    def __repr__(self) -> str:
        o = self.options
        return f"OpenAIBackend(model={o.model!r}, voice={o.voice!r}, base_url={redact_url(o.base_url)!r})"

    def fingerprint(self) -> dict[str, Any]:
        """The base fingerprint plus the server: the same model and voice names differ between
        OpenAI, Kokoro and LocalAI (credentials redacted, never the key)."""
        return {**super().fingerprint(), "server": redact_url(self.options.base_url)}

    @property
    def _where(self) -> str:
        return redact_url(self.options.base_url)

    def _scrub(self, text: str) -> str:
        """``text`` with the API key removed (some servers echo it back in errors)."""
        key = self.options.api_key.get_secret_value() if self.options.api_key else ""
        return text.replace(key, "***") if key else text

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _error_for(self, status: int, body: str, retry_after: str | None) -> GenerationError:
        detail = self._scrub(" ".join(_server_message(body).split()))[:_MAX_ERROR_CHARS]
        msg = f"speech server {self._where} answered HTTP {status}"
        if detail:
            msg += f": {detail}"
        if status in (408, 409, 425, 429) or status >= 500:
            if retry_after:
                msg += f" (Retry-After: {retry_after})"
            return TransientError(msg, server_message=detail or None)
        if status in (401, 403) and self.options.api_key is None:
            msg += " (no API key set: SCENEFORGE_OPENAI_API_KEY or OPENAI_API_KEY)"
        return _permanent(msg, status, detail or None)

    async def synthesize(self, request: SpeechRequest, report: Reporter = null_report) -> SpeechResult:
        """POST ``request.text`` and stream the MP3 body into ``request.dest``."""
        o = self.options
        dest = request.dest
        payload = {
            "model": o.model,
            "input": request.text,
            "voice": self.voice_for(request),
            "response_format": "mp3",
            "speed": min(MAX_SPEED, max(MIN_SPEED, self.rate_for(request))),
        }
        headers = {"Accept": "audio/mpeg"}
        if o.api_key is not None:
            headers["Authorization"] = f"Bearer {o.api_key.get_secret_value()}"
        url = f"{o.base_url}/audio/speech"
        session = self._get_session()
        with self._errors():
            async with asyncio.timeout(o.timeout):
                async with session.post(url, json=payload, headers=headers) as resp:
                    if resp.status >= 400:
                        body = await resp.text(errors="replace")
                        raise self._error_for(resp.status, body, resp.headers.get("Retry-After"))
                    with atomic_path(dest) as tmp:
                        size = 0
                        # Translated inside the atomic block too: atomic_path reports any
                        # OSError (aiohttp's read timeouts are) as a failure to write the file.
                        with self._errors(), tmp.open("wb") as fh:
                            async for chunk in resp.content.iter_chunked(_CHUNK):
                                fh.write(chunk)
                                size += len(chunk)
                        if size == 0:
                            raise TransientError(f"speech server {self._where} returned an empty body")
                        duration = self._duration(tmp, resp.headers.get("Content-Type", "?"))
        return SpeechResult(duration=duration)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Timeouts and aiohttp failures as retryable sceneforge errors."""
        try:
            yield
        except TimeoutError:  # ours, or aiohttp's read timeout (ServerTimeoutError is a TimeoutError)
            raise JobTimeoutError(
                f"speech server {self._where} did not answer within {self.options.timeout:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            # Not chained: aiohttp exceptions can carry request_info with the Authorization header.
            raise TransientError(
                f"speech server {self._where} unreachable: {type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None

    def _duration(self, path: Path, content_type: str) -> float:
        try:
            return mp3_duration(path)
        except Exception as exc:  # mutagen's HeaderNotFoundError and friends
            # A server that answers 200 with JSON/HTML or another format will keep doing it.
            raise _permanent(
                f"speech server {self._where} did not return MP3 audio (Content-Type {content_type}): {exc}"
            ) from None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
