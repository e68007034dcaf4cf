"""``sceneforge preview`` (and ``run --preview``): preview.mp4 and contact_sheet.png for a finished run."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..config import Settings
from ..scenes import SceneFile
from . import common
from .options import Debug, TopicFolder
from .rendering import each_topic, encode_bar, need_scenes_json, render_failed

__all__ = ["preview", "preview_dir", "preview_topics"]


def preview_topics(sfs: list[SceneFile], settings: Settings, debug: bool) -> int:
    """``run --preview``: preview every topic of the run. The result lines go to
    stderr with the run's summary, so ``--json`` keeps stdout pure JSON."""
    return each_topic(sfs, settings, lambda folder: preview_dir(folder, debug))


def preview_dir(folder: Path, debug: bool, out: Console | None = None) -> int:
    """Write ``folder``'s preview.mp4 and contact_sheet.png; print both paths and the duration on ``out``.

    Exit codes: 2 when scenes.json or an asset is missing or unusable (the
    message names the scene; the fix is to run ``sceneforge run`` again), 1 when
    encoding fails.
    """
    try:
        from rich.progress import MofNCompleteColumn, TextColumn

        from ..preview import make_contact_sheet, make_preview

        need_scenes_json(folder)
        with encode_bar(f"encoding {folder.name}/preview.mp4", MofNCompleteColumn(), TextColumn("frames")) as progress:
            task = progress.add_task("preview", total=None)
            res = make_preview(folder, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        sheet = make_contact_sheet(folder)
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        return render_failed(exc, debug)
    out = common.err if out is None else out
    out.print(f"preview: {res.path} ({res.duration:.1f} s)", markup=False)
    out.print(f"contact sheet: {sheet}", markup=False)
    return 0


def preview(
    folder: TopicFolder,
    debug: Debug = False,
) -> None:
    """Write preview.mp4 (720x1280, narration, subtitles) and contact_sheet.png for a finished run.

    Exit codes: 0 done, 2 scenes.json or an asset is missing (run `sceneforge run` first), 1 encoding failed.
    """
    stdout = Console(highlight=False, soft_wrap=True)
    raise typer.Exit(preview_dir(folder, debug, out=stdout))
