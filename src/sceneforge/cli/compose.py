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
from ..errors import RenderCancelledError
from ..scenes import SceneFile
from . import common
from .options import Debug, TopicFolder
from .rendering import each_topic, encode_bar, need_scenes_json, render_failed

__all__ = ["compose", "compose_dir", "compose_topics"]


def compose_topics(sfs: list[SceneFile], settings: Settings, debug: bool) -> int:
    """``run --compose``: compose every topic of the run with the default options (results on stderr)."""
    return each_topic(sfs, settings, lambda folder: compose_dir(folder, {}, debug))


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
            from rich.progress import TaskProgressColumn

            from ..compose import ComposeOptions, compose_topic

            opts = ComposeOptions(**options)
            need_scenes_json(folder)
            with encode_bar(f"composing {folder.name}/final.mp4", TaskProgressColumn()) as progress:
                task = progress.add_task("compose", total=None)
                res = compose_topic(folder, opts, cancel=cancel,
                                    on_progress=lambda d, t: progress.update(task, completed=d, total=t))
        except RenderCancelledError:
            common.err.print("compose stopped: ffmpeg was ended and no file was written", markup=False)
            return 128 + (got[0] if got else signal.SIGINT)
        except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
            return render_failed(exc, debug)
    out = common.err if out is None else out
    out.print(f"final: {res.path} ({res.duration:.2f} s, captions: {', '.join(sorted(set(res.captions)))})",
              markup=False)
    out.print(f"cover: {res.cover}", markup=False)
    return 0


def compose(
    folder: TopicFolder,
    size: Annotated[str, typer.Option(help="1080x1920 | 720x1280 | 1080x1080 | 1920x1080.")] = "1080x1920",
    pad: Annotated[float, typer.Option(help="Seconds of picture after each scene's narration.")] = 0.25,
    transition: Annotated[str, typer.Option(help="none | fade | fadeblack | dissolve | wipeleft | slideleft | ...")] = "fade",
    transition_duration: Annotated[float, typer.Option(help="Crossfade seconds.")] = 0.3,
    captions: Annotated[str, typer.Option(help="none | lines | words (words where the engine gave word timings).")] = "words",
    music: Annotated[Optional[Path], typer.Option(help="Background music file: looped, ducked under the narration.")] = None,
    music_volume: Annotated[float, typer.Option(help="Music level before ducking (0..1).")] = 0.3,
    title: Annotated[Optional[str], typer.Option(help="Title for the cover and the MP4 (default: the topic).")] = None,
    debug: Debug = False,
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
