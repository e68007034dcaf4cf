"""``sceneforge takes``: the kept takes of a topic's scenes, and going back to one."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..pipeline import Topic
from .common import fail
from .options import Debug, TopicFolder

__all__ = ["takes_app"]

takes_app = typer.Typer(help="Every asset a scene had: list them, go back to one.", no_args_is_help=True)


@takes_app.command("list")
def takes_list(
    folder: TopicFolder,
    scene: Annotated[Optional[int], typer.Option("--scene", help="Only this scene (numbered from 1).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    debug: Debug = False,
) -> None:
    """List each scene's takes of narration, image and motion (the current one marked)."""
    try:
        topic = Topic.at(folder)
        count = len(topic.read().scenes)
        if scene is not None and not 1 <= scene <= count:
            raise ConfigError(f"--scene {scene}: {folder} has scenes 1 to {count}")
        numbers = [scene] if scene is not None else list(range(1, count + 1))
        found = {n: topic.takes(n) for n in numbers}
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        raise typer.Exit(fail(exc, debug)) from None
    if json_out:
        print(json.dumps({str(n): {stage: [{**t.to_json(), "seed": t.seed, "current": t.current} for t in takes]
                                   for stage, takes in by_stage.items()} for n, by_stage in found.items()},
                         ensure_ascii=False, indent=2))
        return
    table = Table(title=f"takes of {folder}", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("scene", "stage", "take", "made (UTC)", "seed", "now"):  # fits 80 columns, ids whole
        table.add_column(name, no_wrap=True, overflow="ignore")
    for n, by_stage in found.items():
        for stage, takes in by_stage.items():
            for t in takes:
                made = t.created_at[5:16].replace("T", " ")  # MM-DD HH:MM
                table.add_row(str(n), stage, t.id, made, "" if t.seed is None else str(t.seed),
                              "✓" if t.current else "")
    Console().print(table)


@takes_app.command("restore")
def takes_restore(
    folder: TopicFolder,
    take: Annotated[str, typer.Argument(help="The take's id (see `sceneforge takes list`).")],
    scene: Annotated[int, typer.Option("--scene", help="The scene (numbered from 1).")],
    stage: Annotated[str, typer.Option("--stage", help="audio, image or motion.")],
    debug: Debug = False,
) -> None:
    """Make an earlier take current again; scenes.json points at it."""
    try:
        sf = Topic.at(folder).restore(scene, stage, take, wait=30.0)
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    Console(stderr=True).print(f"scene {scene} {stage}: take {take} restored ({sf.topic})", markup=False)
