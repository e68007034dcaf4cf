"""``sceneforge serve``: the HTTP service (``sceneforge.service``) with the run options (:mod:`.options`) as every
topic's defaults."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..config import load_settings
from .common import err, fail, overrides
from .options import Concurrency, RunOptions, with_run_options

__all__ = ["serve"]


@with_run_options
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1; any other needs SCENEFORGE_SERVE_TOKEN).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8765; 0 picks a free one).")] = None,
    concurrency: Concurrency = None,
    max_queued: Annotated[Optional[int], typer.Option(help="Jobs that may wait (default 100; more get 429).")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="Allow this browser origin to read and change topics (repeatable; default none).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option("--allowed-host", help="Also answer requests for this host name (repeatable; default: the bound address's own names).")] = None,
    webhook_allow: Annotated[Optional[list[str]], typer.Option("--webhook-allow", help="Let webhooks reach this host or network (CIDR) though it is private or loopback (repeatable).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level (info shows each request).")] = "warning",
    *,
    options: RunOptions,
) -> None:
    """Serve the HTTP API: queue topics, edit and re-roll scenes, keep takes, stream events (see docs/service.md).

    The run options (--out, --tts, --workflow, --seed, ...) are every topic's defaults; --out is the folder
    of the topics the service serves."""
    debug = options.debug
    try:
        settings = load_settings(options.overrides() | overrides(
            serve_host=host, serve_port=port, serve_concurrency=concurrency, serve_max_queued=max_queued,
            serve_cors_origins=tuple(cors_origin) if cors_origin else None,
            serve_allowed_hosts=tuple(allowed_host) if allowed_host else None,
            serve_webhook_allow=tuple(webhook_allow) if webhook_allow else None,
        ), config_file=options.config)
        from ..service.auth import check_bind
        from ..service.server import serve as run_server

        check_bind(settings.serve_host, settings.serve_token.get_secret_value() if settings.serve_token else None)
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        raise typer.Exit(fail(exc, debug)) from None

    def ready(url: str) -> None:
        print(f"sceneforge serving {settings.out_dir} on {url} (API page: {url}/docs; Ctrl-C stops)", flush=True)

    try:
        run_server(settings, on_ready=ready, log_level=log_level)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot listen on {settings.serve_host}:{settings.serve_port}: {exc.strerror}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
