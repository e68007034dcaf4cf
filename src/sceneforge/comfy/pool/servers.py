"""Build the ComfyUI clients and the server pool a run uses, from its settings."""

from __future__ import annotations

from ...config import Settings
from ..client import ComfyClient
from .pool import ComfyPool

__all__ = ["clients_from_settings", "pool_from_settings", "secret_headers"]


def secret_headers(settings: Settings) -> dict[str, str] | None:
    """The configured ComfyUI headers with their secret values, for the HTTP client only."""
    headers = {k: v.get_secret_value() for k, v in settings.comfy_headers.items()}
    return headers or None


def clients_from_settings(settings: Settings) -> list[ComfyClient]:
    """One client per URL in ``settings.comfy_urls``, with the configured headers and timeout."""
    headers = secret_headers(settings)
    return [
        ComfyClient(
            url, headers=headers, timeout=settings.comfy_timeout, poll_interval=settings.comfy_poll_interval,
            max_download_bytes=int(settings.comfy_max_download_mb * 1024 * 1024),
            download_timeout=settings.comfy_download_timeout,
        )
        for url in settings.comfy_urls
    ]


def pool_from_settings(settings: Settings) -> ComfyPool:
    """A pool of every configured server (the caller owns it and closes it)."""
    return ComfyPool(clients_from_settings(settings), outage_grace=settings.comfy_outage_grace)
