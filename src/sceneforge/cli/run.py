"""``sceneforge run``: plan the run with the library, run it, show progress and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from ..config import load_settings
from ..errors import ConfigError
from ..events import Event, EventSink, JsonLinesSink
from ..pipeline import RunPlan, plan_run, run_many
from ..pipeline.context import Sleep
from . import common
from .common import fail, overrides
from .compose import compose_topics
from .options import RunOptions, with_run_options
from .preview import preview_topics
from .progress import ProgressView

__all__ = ["run"]

T = TypeVar("T")


@with_run_options
def run(
    files: Annotated[list[Path], typer.Argument(help="Scene files (JSON): a list of scenes or {topic, scenes}.")],
    topic: Annotated[Optional[str], typer.Option(help="Topic (folder name); default: the file's topic, else its name.")] = None,
    scene: Annotated[Optional[list[int]], typer.Option("--scene", help="Only this scene (repeatable), numbered from 1.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Regenerate even when cached.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the resulting state as JSON on stdout.")] = False,
    events: Annotated[Optional[str], typer.Option(help="Write JSON-lines events to FILE ('-' for stdout).")] = None,
    wait_lock: Annotated[Optional[float], typer.Option(help="Seconds to wait for another run on the same topic.")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.mp4 and contact_sheet.png.")] = False,
    compose: Annotated[bool, typer.Option("--compose", help="Also write final.mp4 and cover.jpg (default compose options).")] = False,
    *,
    options: RunOptions,
) -> None:
    """Generate narration, images and (optionally) motion for scene files."""
    debug = options.debug
    try:
        flags = options.overrides() | overrides(
            lock_wait=wait_lock, only_scenes=frozenset(scene) if scene else None, force=True if force else None,
        )
        stages = options.stages
        asked_motion = bool(stages) and "motion" in {x.strip() for x in (stages or "").split(",")}
        if asked_motion and options.motion is None:
            flags["motion_enabled"] = True  # asking for the motion stage asks for motion
        settings = load_settings(flags, config_file=options.config)
        if asked_motion and not settings.motion_enabled:
            raise ConfigError("--stages includes motion but motion is disabled (--no-motion or MOTION_ENABLED=false)")
        _check_flags(files, events=events, json_out=json_out, offline=options.offline, tts=options.tts)
        plan = plan_run(list(files), settings, topic=topic)
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        raise typer.Exit(fail(exc, debug)) from None
    raise typer.Exit(_run_plan(plan, json_out=json_out, events=events, preview=preview, compose=compose, debug=debug))


def _check_flags(files: list[Path], *, events: str | None, json_out: bool, offline: bool, tts: str | None) -> None:
    """Flags that contradict each other, or would destroy an input, are refused before anything runs."""
    if offline and tts and tts != "espeak":
        raise ConfigError(f"--offline narrates with espeak; drop --tts {tts} or --offline")
    if events == "-" and json_out:
        raise ConfigError("--events - and --json both write to stdout; give --events a file")
    if events and events != "-" and any(Path(events).resolve() == Path(f).resolve() for f in files):
        raise ConfigError(f"--events {events} is one of the scene files; it would be overwritten; give another file")


#: Seconds a stop may spend removing the run's jobs from the ComfyUI servers (each job's delete + interrupt
#: is itself bounded by the client's cancel timeout) before the run is cancelled again, harder.
STOP_DEADLINE = 15.0


async def _until_signalled(work: Coroutine[Any, Any, T], stopped: list[int], *,
                           deadline: float = STOP_DEADLINE, sleep: Sleep = asyncio.sleep) -> T:
    """Run ``work``; SIGTERM (a service manager, ``timeout``, ``docker stop``) and SIGINT stop it the same
    way: the run is cancelled, so ComfyUI jobs are removed from their servers (the queued ones deleted, the
    running one interrupted) and ``scenes.json`` written.

    Only the first signal cancels: a second one (Ctrl-C pressed twice, or a wrapper such as ``uv run`` or a
    process-group kill delivering the signal again) would cut the server-side cancels short and leave the
    running job on the GPU. The stop is bounded instead: ``deadline`` seconds after the first signal the
    run is cancelled once more, whatever is still waiting.
    """
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None

    async def hard_stop() -> None:
        await sleep(deadline)
        task.cancel()

    def stop(signum: int) -> None:
        stopped.append(signum)
        if len(stopped) == 1:
            task.cancel()
            pending.append(asyncio.ensure_future(hard_stop()))

    pending: list[asyncio.Future[None]] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform / thread
            loop.add_signal_handler(signum, stop, signum)
    try:
        return await work
    finally:
        for waiter in pending:
            waiter.cancel()


def _run_plan(plan: RunPlan, *, json_out: bool, events: str | None, preview: bool, compose: bool, debug: bool) -> int:
    with ExitStack() as stack:
        view = ProgressView(common.err, enabled=not json_out and common.err.is_terminal)
        sinks: list[EventSink] = [view]
        if events:
            try:
                stream = sys.stdout if events == "-" else stack.enter_context(open(events, "w", encoding="utf-8"))
            except OSError as exc:
                return fail(ConfigError(f"--events {events}: cannot write: {exc.strerror}"), debug)
            sinks.append(JsonLinesSink(stream))

        def emit(ev: Event) -> None:
            for sink in sinks:
                sink(ev)

        stack.enter_context(view)
        stopped: list[int] = []
        try:
            results = asyncio.run(_until_signalled(run_many(plan, emit=emit), stopped))
        except (KeyboardInterrupt, asyncio.CancelledError):
            stopped.append(stopped[0] if stopped else signal.SIGINT)
        except Exception as exc:  # noqa: BLE001 - e.g. a server pool that cannot be built
            return fail(exc, debug)
    if stopped:
        name = signal.Signals(stopped[0]).name
        common.err.print(f"stopped ({name}): unfinished ComfyUI jobs were cancelled; scenes.json keeps what "
                         "finished, and running the same command again makes only the rest", markup=False)
        return 128 + stopped[0]

    code = 0
    for sf, failure in results:
        if failure is not None:
            if len(results) > 1:
                common.err.print(f"{sf.topic} ({sf.path}):", markup=False)  # which file the error belongs to
            code = max(code, fail(failure, debug))
    if not json_out:
        view.summary(plan.topics, plan.settings)
    if preview and code == 0:
        code = preview_topics(plan.topics, plan.settings, debug)
    if compose and code == 0:
        code = compose_topics(plan.topics, plan.settings, debug)
    if json_out:
        payload = [sf.state() for sf in plan.topics]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False, indent=2))
    return code
