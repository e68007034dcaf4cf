"""Build ComfyUI clients for every configured server."""

from __future__ import annotations

from typing import Any

from ..config import Settings

__all__ = ["clients_from_settings"]


def clients_from_settings(settings: Settings) -> list[Any]:
    """One client per URL in ``settings.comfy_urls``, with the configured headers and timeout."""
    from .client import ComfyClient

    headers = {k: v.get_secret_value() for k, v in settings.comfy_headers.items()}
    return [
        ComfyClient(url, headers=headers or None, timeout=settings.comfy_timeout, poll_interval=settings.comfy_poll_interval)
        for url in settings.comfy_urls
    ]
