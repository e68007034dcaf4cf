"""What ``preview`` and ``compose`` (and ``run --preview`` / ``run --compose``) share: a topic folder's
check, the encode's progress bar on stderr, the exit code of a failure, and the loop over a run's topics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import AssetMissingError
from ..layout import TopicLayout
from ..scenes import SceneFile
from . import common

__all__ = ["each_topic", "need_scenes_json", "encode_bar", "render_failed"]


def each_topic(sfs: list[SceneFile], settings: Settings, render: Callable[[Path], int]) -> int:
    """``render`` every topic of a run (its folder under ``settings.out_dir``); the worst exit code."""
    code = 0
    for sf in sfs:
        code = max(code, render(TopicLayout.for_topic(settings.out_dir, sf.topic).root))
    return code


def need_scenes_json(folder: Path) -> None:
    """AssetMissingError (exit 2) when ``folder`` has no ``scenes.json``."""
    if not (folder / "scenes.json").is_file():
        raise AssetMissingError(f"{folder}: no scenes.json here; run `sceneforge run` first")


def encode_bar(what: str, *columns: Any) -> Any:
    """A rich bar on stderr for an encode (``what``: its file), with ``columns`` after the bar; silent when
    stderr is not a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(what, markup=False), BarColumn(), *columns, TimeRemainingColumn(),
                    console=common.err, transient=True, disable=not common.err.is_terminal)


def render_failed(exc: BaseException, debug: bool) -> int:
    """The clean message of a failed render; exit 2 for a missing or unusable asset (run again), else 1."""
    code = common.fail(exc, debug)
    return 2 if isinstance(exc, AssetMissingError) else code
