"""``sceneforge workflow inspect``: what sceneforge will write where in a workflow."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..comfy.graphs.workflow import Workflow
from ..workflows import BUNDLED_KINDS, bundled_kind
from .common import fail
from .options import Debug

__all__ = ["workflow_app"]

workflow_app = typer.Typer(help="Look at ComfyUI workflows.", no_args_is_help=True)


@workflow_app.command("inspect")
def workflow_inspect(
    file: Annotated[str, typer.Argument(help="Bundled workflow name or API-format JSON file.")],
    kind: Annotated[Optional[str], typer.Option(help="image or motion (default: a bundled workflow's own kind, else image).")] = None,
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) for the prompt.")] = None,
    image_node: Annotated[Optional[str], typer.Option(help="LoadImage node (motion), or the reference node (image).")] = None,
    debug: Debug = False,
) -> None:
    """Show what sceneforge will inject where in a workflow."""
    try:
        if kind is None:
            kind = (bundled_kind(file) if file in BUNDLED_KINDS else None) or "image"
        wf = Workflow.load(file, kind=kind)
        table = Table(title=f"{wf.source} ({len(wf.graph)} nodes)")
        for col in ("what", "node", "class", "input"):
            table.add_column(col, no_wrap=True)
        table.add_column("title", max_width=24)
        table.add_column("current value", max_width=40)
        for inj in wf.inspect(kind=kind, prompt_node=prompt_node, image_node=image_node):
            value = str(inj.value)
            value = value if len(value) <= 60 else value[:59] + "…"
            table.add_row(inj.what, inj.node_id, inj.class_type, inj.input_name, inj.title or "", value)
        Console().print(table)
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
