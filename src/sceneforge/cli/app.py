"""The ``sceneforge`` command line: a thin client of the library.

Commands: ``run``, ``serve``, ``mcp``, ``preview``, ``compose``, ``doctor``, ``takes``, ``workflow inspect``. Each parses its
flags into settings, calls the library, and turns errors into one clear message
and an exit code (0 done, 2 bad input or usage, 1 generation failed).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ..config import load_settings
from ..doctor import doctor_report
from . import common
from .agent import mcp
from .common import fail, overrides
from .compose import compose
from .doctor import render_report
from .options import ComfyUrls, ConfigFile, Debug, MotionWorkflowName, WorkflowName
from .preview import preview
from .run import run
from .serve import serve
from .takes import takes_app
from .workflow import workflow_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="sceneforge",
    help="Turn planned video scenes into narration, images and motion frames.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(run)
app.command()(serve)
app.command("preview")(preview)
app.command("mcp")(mcp)
app.command("compose")(compose)
app.add_typer(workflow_app, name="workflow")
app.add_typer(takes_app, name="takes")


@app.command()
def doctor(
    comfy_url: ComfyUrls = None,
    workflow: WorkflowName = None,
    motion_workflow: MotionWorkflowName = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    debug: Debug = False,
) -> None:
    """Check ComfyUI servers and workflows: reachability, devices, queue, nodes, model files."""
    try:
        settings = load_settings(
            overrides(comfy_urls=tuple(comfy_url) if comfy_url else None, workflow=workflow,
                      motion_workflow=motion_workflow),
            config_file=config,
        )
        check_motion = motion_workflow is not None or settings.motion_enabled
        # One report (sceneforge.doctor.doctor_report; the MCP doctor tool answers it too), as JSON or as text.
        report = asyncio.run(doctor_report(settings, check_motion=check_motion))
        if as_json:
            print(report.model_dump_json(indent=2))
        else:
            render_report(report, common.err)
        ok = report.healthy
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Console-script entry point."""
    app()
