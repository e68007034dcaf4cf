"""``sceneforge serve``: the HTTP service (``sceneforge.service``) on the run's settings as defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import load_settings
from .common import err, fail, overrides

__all__ = ["serve"]


def serve(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder: the topics the service serves.")] = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1; any other needs SCENEFORGE_SERVE_TOKEN).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8765; 0 picks a free one).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Topics running at once (default 2).")] = None,
    max_queued: Annotated[Optional[int], typer.Option(help="Jobs that may wait (default 100; more get 429).")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option("--cors-origin", help="Allow this browser origin to read and change topics (repeatable; default none).")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option("--allowed-host", help="Also answer requests for this host name (repeatable; default: the bound address's own names).")] = None,
    webhook_allow: Annotated[Optional[list[str]], typer.Option("--webhook-allow", help="Let webhooks reach this host or network (CIDR) though it is private or loopback (repeatable).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Default to the offline backends: espeak, storyboard, kenburns.")] = False,
    stages: Annotated[Optional[str], typer.Option(help="Default stages, e.g. audio,image,motion.")] = None,
    tts: Annotated[Optional[str], typer.Option(help="Default narration engine: edge, espeak, openai.")] = None,
    voice: Annotated[Optional[str], typer.Option(help="Default voice.")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Default speech rate.")] = None,
    comfy_url: Annotated[Optional[list[str]], typer.Option("--comfy-url", help="ComfyUI server URL (repeatable): the one pool for every topic.")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="Default text-to-image workflow: bundled name or API-format file.")] = None,
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) that takes the prompt.")] = None,
    negative: Annotated[Optional[str], typer.Option(help="Default negative prompt.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Image width.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Image height.")] = None,
    motion: Annotated[Optional[bool], typer.Option("--motion/--no-motion", help="Make motion frames by default.")] = None,
    motion_workflow: Annotated[Optional[str], typer.Option(help="Default Wan2.2 workflow: bundled name or file.")] = None,
    motion_length: Annotated[Optional[int], typer.Option(help="Frames per clip (4k+1 for Wan).")] = None,
    motion_fps: Annotated[Optional[float], typer.Option(help="Frames per second.")] = None,
    sequential: Annotated[bool, typer.Option("--sequential", help="The original system's order for every job.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="Config file (default: ./sceneforge.toml).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level (info shows each request).")] = "warning",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Serve the HTTP API: queue topics, edit and re-roll scenes, keep takes, stream events (see docs/service.md)."""
    try:
        settings = load_settings(overrides(
            out_dir=out, serve_host=host, serve_port=port, serve_concurrency=concurrency, serve_max_queued=max_queued,
            serve_cors_origins=tuple(cors_origin) if cors_origin else None,
            serve_allowed_hosts=tuple(allowed_host) if allowed_host else None,
            serve_webhook_allow=tuple(webhook_allow) if webhook_allow else None, offline=True if offline else None,
            stages=stages, tts=tts, voice=voice, rate=rate, comfy_urls=tuple(comfy_url) if comfy_url else None,
            workflow=workflow, prompt_node=prompt_node, negative=negative, width=width, height=height,
            motion_enabled=motion, motion_workflow=motion_workflow, motion_length=motion_length,
            motion_fps=motion_fps, sequential=True if sequential else None,
        ), config_file=config)
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
