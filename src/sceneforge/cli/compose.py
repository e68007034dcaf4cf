"""``sceneforge compose`` (and ``run --compose``): final.mp4 and cover.jpg, ready to publish."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..config import Settings
from ..errors import AssetMissingError, RenderCancelledError
from ..layout import TopicLayout
from ..scenes import SceneFile
from . import common

__all__ = ["compose", "compose_dir", "compose_topics"]


def compose_topics(sfs: list[SceneFile], settings: Settings, debug: bool) -> int:
    """``run --compose``: compose every topic of the run with the default options (results on stderr)."""
    code = 0
    for sf in sfs:
        code = max(code, compose_dir(TopicLayout.for_topic(settings.out_dir, sf.topic).root, {}, debug))
    return code


def _progress(folder: Path) -> Any:
    """A rich bar on stderr for the encode, in seconds of video; silent when stderr is not a terminal."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(f"composing {folder.name}/final.mp4", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=common.err,
        transient=True,
        disable=not common.err.is_terminal,
    )


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[tuple[threading.Event, list[int]]]:
    """SIGINT and SIGTERM set the cancel event (ffmpeg is stopped, nothing half-written is kept)."""
    cancel, got = threading.Event(), []

    def handler(signum: int, frame: Any) -> None:
        got.append(signum)
        cancel.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield cancel, got
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def compose_dir(folder: Path, options: dict[str, Any], debug: bool, out: Console | None = None) -> int:
    """Compose ``folder``'s final.mp4 and cover.jpg with ``options`` (:class:`ComposeOptions` fields).

    Exit codes: 0 done, 2 bad input (an asset or the music file missing or
    unreadable, a bad option), 1 the render failed, 128+N stopped by signal N.
    """
    with _cancel_on_signals() as (cancel, got):
        try:
            from ..compose import ComposeOptions, compose_topic

            opts = ComposeOptions(**options)
            if not (folder / "scenes.json").is_file():
                raise AssetMissingError(f"{folder}: no scenes.json here; run `sceneforge run` first")
            with _progress(folder) as progress:
                task = progress.add_task("compose", total=None)
                res = compose_topic(folder, opts, cancel=cancel,
                                    on_progress=lambda d, t: progress.update(task, completed=d, total=t))
        except RenderCancelledError:
            common.err.print("compose stopped: ffmpeg was ended and no file was written", markup=False)
            return 128 + (got[0] if got else signal.SIGINT)
        except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
            code = common.fail(exc, debug)
            return 2 if isinstance(exc, AssetMissingError) else code
    out = common.err if out is None else out
    out.print(f"final: {res.path} ({res.duration:.2f} s, captions: {', '.join(sorted(set(res.captions)))})",
              markup=False)
    out.print(f"cover: {res.cover}", markup=False)
    return 0


def compose(
    folder: Annotated[Path, typer.Argument(help="A topic folder: <out>/<topic>.")],
    size: Annotated[str, typer.Option(help="1080x1920 | 720x1280 | 1080x1080 | 1920x1080.")] = "1080x1920",
    pad: Annotated[float, typer.Option(help="Seconds of picture after each scene's narration.")] = 0.25,
    transition: Annotated[str, typer.Option(help="none | fade | fadeblack | dissolve | wipeleft | slideleft | ...")] = "fade",
    transition_duration: Annotated[float, typer.Option(help="Crossfade seconds.")] = 0.3,
    captions: Annotated[str, typer.Option(help="none | lines | words (words where the engine gave word timings).")] = "words",
    music: Annotated[Optional[Path], typer.Option(help="Background music file: looped, ducked under the narration.")] = None,
    music_volume: Annotated[float, typer.Option(help="Music level before ducking (0..1).")] = 0.3,
    title: Annotated[Optional[str], typer.Option(help="Title for the cover and the MP4 (default: the topic).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write final.mp4 (H.264 + AAC, captions, crossfades, -14 LUFS) and cover.jpg from a topic's assets.

    Exit codes: 0 done, 2 bad input (missing asset, unreadable music, bad option), 1 the render failed,
    130/143 stopped by Ctrl-C/SIGTERM.
    """
    from ..compose import SIZES, parse_size
    from ..errors import ConfigError

    if size not in SIZES:
        raise typer.Exit(common.fail(ConfigError(f"--size {size}: expected one of {', '.join(SIZES)}"), debug))
    options = {"size": parse_size(size), "pad": pad, "transition": transition, "captions": captions,
               "transition_duration": transition_duration, "music": music, "music_volume": music_volume,
               "title": title}
    raise typer.Exit(compose_dir(folder, options, debug, out=Console(highlight=False, soft_wrap=True)))
