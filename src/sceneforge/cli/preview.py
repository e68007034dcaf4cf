"""``sceneforge preview`` (and ``run --preview``): preview.mp4 and contact_sheet.png for a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..config import Settings
from ..errors import AssetMissingError
from ..layout import TopicLayout
from ..scenes import SceneFile
from . import common

__all__ = ["preview", "preview_dir", "preview_topics"]


def preview_topics(sfs: list[SceneFile], settings: Settings, debug: bool) -> int:
    """``run --preview``: preview every topic of the run. The result lines go to
    stderr with the run's summary, so ``--json`` keeps stdout pure JSON."""
    code = 0
    for sf in sfs:
        code = max(code, preview_dir(TopicLayout.for_topic(settings.out_dir, sf.topic).root, debug))
    return code


def _encode_progress(folder: Path) -> Any:
    """A rich bar on stderr for the preview encode; silent when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"encoding {folder.name}/preview.mp4", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeRemainingColumn(),
        console=common.err,
        transient=True,
        disable=not common.err.is_terminal,
    )


def preview_dir(folder: Path, debug: bool, out: Console | None = None) -> int:
    """Write ``folder``'s preview.mp4 and contact_sheet.png; print both paths and the duration on ``out``.

    Exit codes: 2 when scenes.json or an asset is missing or unusable (the
    message names the scene; the fix is to run ``sceneforge run`` again), 1 when
    encoding fails.
    """
    try:
        from ..preview import make_contact_sheet, make_preview

        if not (folder / "scenes.json").is_file():
            raise AssetMissingError(f"{folder}: no scenes.json here; run `sceneforge run` first")
        with _encode_progress(folder) as progress:
            task = progress.add_task("preview", total=None)
            res = make_preview(folder, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        sheet = make_contact_sheet(folder)
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        code = common.fail(exc, debug)
        return 2 if isinstance(exc, AssetMissingError) else code
    out = common.err if out is None else out
    out.print(f"preview: {res.path} ({res.duration:.1f} s)", markup=False)
    out.print(f"contact sheet: {sheet}", markup=False)
    return 0


def preview(
    folder: Annotated[Path, typer.Argument(help="A topic folder: <out>/<topic>.")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write preview.mp4 (720x1280, narration, subtitles) and contact_sheet.png for a finished run.

    Exit codes: 0 done, 2 scenes.json or an asset is missing (run `sceneforge run` first), 1 encoding failed.
    """
    stdout = Console(highlight=False, soft_wrap=True)
    raise typer.Exit(preview_dir(folder, debug, out=stdout))
