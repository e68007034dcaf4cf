"""``sceneforge mcp``: the MCP server over stdio (for desktop agents), with the run options (:mod:`.options`) as every
topic's defaults."""

from __future__ import annotations

import typer

from ..config import load_settings
from .common import fail, overrides
from .options import Concurrency, RunOptions, with_run_options

__all__ = ["mcp"]


@with_run_options
def mcp(
    concurrency: Concurrency = None,
    *,
    options: RunOptions,
) -> None:
    """Serve the MCP tools over stdio for an agent (see docs/mcp.md); stdout carries only the protocol.

    The run options (--out, --tts, --workflow, --seed, ...) are every topic's defaults; --out is the folder
    of the topics the agent works on."""
    debug = options.debug
    try:
        settings = load_settings(options.overrides() | overrides(serve_concurrency=concurrency),
                                 config_file=options.config)
        from ..mcp.stdio import run_stdio

        run_stdio(settings)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message (on stderr)
        raise typer.Exit(fail(exc, debug)) from None
