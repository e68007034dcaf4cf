"""``sceneforge mcp``: the MCP server over stdio (for desktop agents), on the run's settings as defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import load_settings
from .common import fail, overrides

__all__ = ["mcp"]


def mcp(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder: the topics the agent works on.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Default to the offline backends: espeak, storyboard, kenburns.")] = False,
    stages: Annotated[Optional[str], typer.Option(help="Default stages, e.g. audio,image,motion.")] = None,
    tts: Annotated[Optional[str], typer.Option(help="Default narration engine: edge, espeak, openai.")] = None,
    voice: Annotated[Optional[str], typer.Option(help="Default voice.")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Default speech rate.")] = None,
    comfy_url: Annotated[Optional[list[str]], typer.Option("--comfy-url", help="ComfyUI server URL (repeatable).")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="Default text-to-image workflow: bundled name or API-format file.")] = None,
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) that takes the prompt.")] = None,
    negative: Annotated[Optional[str], typer.Option(help="Default negative prompt.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Image width.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Image height.")] = None,
    motion: Annotated[Optional[bool], typer.Option("--motion/--no-motion", help="Make motion frames by default.")] = None,
    motion_workflow: Annotated[Optional[str], typer.Option(help="Default Wan2.2 workflow: bundled name or file.")] = None,
    motion_length: Annotated[Optional[int], typer.Option(help="Frames per clip (4k+1 for Wan).")] = None,
    motion_fps: Annotated[Optional[float], typer.Option(help="Frames per second.")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Topics running at once (default 2).")] = None,
    sequential: Annotated[bool, typer.Option("--sequential", help="The original system's order for every job.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="Config file (default: ./sceneforge.toml).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Serve the MCP tools over stdio for an agent (see docs/mcp.md); stdout carries only the protocol."""
    try:
        settings = load_settings(overrides(
            out_dir=out, offline=True if offline else None, stages=stages, tts=tts, voice=voice, rate=rate,
            comfy_urls=tuple(comfy_url) if comfy_url else None, workflow=workflow, prompt_node=prompt_node,
            negative=negative, width=width, height=height, motion_enabled=motion, motion_workflow=motion_workflow,
            motion_length=motion_length, motion_fps=motion_fps, serve_concurrency=concurrency,
            sequential=True if sequential else None,
        ), config_file=config)
        from ..mcp.stdio import run_stdio

        run_stdio(settings)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message (on stderr)
        raise typer.Exit(fail(exc, debug)) from None
