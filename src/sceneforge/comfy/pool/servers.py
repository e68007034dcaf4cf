"""Build the pool's members (ComfyUI servers and serverless endpoints) and the pool a run uses, from its settings.

A RunPod key comes from the environment (``SCENEFORGE_RUNPOD_API_KEY``, else ``RUNPOD_API_KEY``)
at this moment only: it lives in the member's request headers and nowhere else (never in the
settings, a URL, an event, a log line or a file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ...config import Settings, redact_url
from ...errors import ConfigError
from ..client import ComfyClient
from ..endpoints.comfyui_api import ComfyApiClient
from ..endpoints.runpod import RunPodClient
from ..endpoints.urls import endpoint_base, member_kind
from .pool import ComfyPool

__all__ = ["clients_from_settings", "members_from_settings", "pool_from_settings", "secret_headers", "runpod_key"]

Member = ComfyClient | RunPodClient | ComfyApiClient


def secret_headers(settings: Settings) -> dict[str, str] | None:
    """The configured ComfyUI headers with their secret values, for the HTTP client only."""
    headers = {k: v.get_secret_value() for k, v in settings.comfy_headers.items()}
    return headers or None


def runpod_key(env: Mapping[str, str] | None = None) -> str:
    """The RunPod API key of the environment ('' when none is set)."""
    env = os.environ if env is None else env
    return (env.get("SCENEFORGE_RUNPOD_API_KEY") or env.get("RUNPOD_API_KEY") or "").strip()


def _server(settings: Settings, url: str) -> ComfyClient:
    client = ComfyClient(
        url, headers=secret_headers(settings), timeout=settings.comfy_timeout,
        poll_interval=settings.comfy_poll_interval, max_download_bytes=int(settings.comfy_max_download_mb * 1024 * 1024),
        download_timeout=settings.comfy_download_timeout,
    )
    client.price_per_second = settings.comfy_member_options.get(url, {}).get("price_per_second")
    return client


def _endpoint(settings: Settings, url: str, env: Mapping[str, str] | None) -> RunPodClient | ComfyApiClient:
    options: dict[str, Any] = dict(settings.comfy_member_options.get(url, {}))
    common: dict[str, Any] = {
        "server": redact_url(url), "timeout": settings.comfy_timeout, "queue_timeout": settings.comfy_queue_timeout,
        "max_download_bytes": int(settings.comfy_max_download_mb * 1024 * 1024),
        "download_timeout": settings.comfy_download_timeout, "price_per_second": options.get("price_per_second"),
    }
    if "concurrency" in options:
        common["concurrency"] = int(options["concurrency"])
    if member_kind(url) == "runpod":
        key = runpod_key(env)
        if not key:
            raise ConfigError(f"{redact_url(url)} is a RunPod endpoint: set RUNPOD_API_KEY (or SCENEFORGE_RUNPOD_API_KEY)")
        return RunPodClient(endpoint_base(url), api_key=key, **common)
    return ComfyApiClient(endpoint_base(url), **common)


def members_from_settings(settings: Settings, env: Mapping[str, str] | None = None) -> list[Member]:
    """One member per URL in ``settings.comfy_urls``: a ComfyUI server or an endpoint, by its scheme."""
    return [_server(settings, u) if member_kind(u) == "comfyui" else _endpoint(settings, u, env)
            for u in settings.comfy_urls]


def clients_from_settings(settings: Settings) -> list[ComfyClient]:
    """The ComfyUI servers among ``settings.comfy_urls`` (the members with ``/object_info`` and ``/view``)."""
    return [_server(settings, u) for u in settings.comfy_urls if member_kind(u) == "comfyui"]


def pool_from_settings(settings: Settings, env: Mapping[str, str] | None = None) -> ComfyPool[Any]:
    """A pool of every configured member (the caller owns it and closes it); each member brings its price."""
    return ComfyPool(members_from_settings(settings, env), outage_grace=settings.comfy_outage_grace)
