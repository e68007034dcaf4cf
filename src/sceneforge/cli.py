"""The ``sceneforge`` command line: run, doctor, preview, workflow inspect.

Exit codes: 0 done, 2 bad input or usage, 1 generation failed. Errors are
printed as one clear message, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.traceback import Traceback

from .config import Settings, load_settings
from .errors import ConfigError, SceneValidationError, UnsafePathError, WorkflowError
from .events import Event, JsonLinesSink
from .progress import ProgressView
from .scenes import SceneFile, load_scene_file

app = typer.Typer(
    name="sceneforge",
    help="Turn planned video scenes into narration, images and motion frames.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workflow_app = typer.Typer(help="Look at ComfyUI workflows.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")

err = Console(stderr=True, highlight=False, soft_wrap=True)
BAD_INPUT = (SceneValidationError, ConfigError, UnsafePathError, WorkflowError)


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _fail(exc: BaseException, debug: bool = False) -> int:
    """Print an error cleanly and choose the exit code."""
    code = 2 if isinstance(exc, BAD_INPUT) else 1
    if isinstance(exc, SceneValidationError) and len(exc.problems) > 1:
        err.print(f"[bold red]error:[/] {len(exc.problems)} problems in the input:")
        for p in exc.problems:
            err.print(f"  - {p}", markup=False)
    else:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc) or type(exc).__name__, markup=False)
    if debug:
        err.print(Traceback.from_exception(type(exc), exc, exc.__traceback__))  # print_exception() needs an except block
    return code


def _overrides(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


@app.command()
def run(
    files: Annotated[list[Path], typer.Argument(help="Scene files (JSON): a list of scenes or {topic, scenes}.")],
    topic: Annotated[Optional[str], typer.Option(help="Topic (folder name); default: the file's topic, else its name.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: output).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use the offline backends: espeak, storyboard, kenburns.")] = False,
    stages: Annotated[Optional[str], typer.Option(help="Stages to run, e.g. audio,image,motion.")] = None,
    tts: Annotated[Optional[str], typer.Option(help="Narration engine: edge, espeak, openai.")] = None,
    voice: Annotated[Optional[str], typer.Option(help="Voice (engine-specific).")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Speech rate multiplier (1.0 normal).")] = None,
    scene: Annotated[Optional[list[int]], typer.Option("--scene", help="Only this scene (repeatable), numbered from 1.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Regenerate even when cached.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the resulting state as JSON on stdout.")] = False,
    comfy_url: Annotated[Optional[list[str]], typer.Option("--comfy-url", help="ComfyUI server URL (repeatable).")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="Text-to-image workflow: bundled name or API-format file.")] = None,
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) that takes the prompt.")] = None,
    negative: Annotated[Optional[str], typer.Option(help="Negative prompt.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Fixed image seed (default: random, recorded).")] = None,
    width: Annotated[Optional[int], typer.Option(help="Image width.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Image height.")] = None,
    motion: Annotated[Optional[bool], typer.Option("--motion/--no-motion", help="Make motion frames.")] = None,
    motion_workflow: Annotated[Optional[str], typer.Option(help="Wan2.2 workflow: bundled name or file.")] = None,
    motion_prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) for the motion prompt.")] = None,
    motion_image_node: Annotated[Optional[str], typer.Option(help="LoadImage node (title or id).")] = None,
    motion_length: Annotated[Optional[int], typer.Option(help="Frames per clip (4k+1 for Wan).")] = None,
    motion_fps: Annotated[Optional[float], typer.Option(help="Frames per second.")] = None,
    motion_seed: Annotated[Optional[int], typer.Option(help="Fixed motion seed.")] = None,
    sequential: Annotated[bool, typer.Option("--sequential", help="The seed's order: stage by stage, scene by scene.")] = False,
    events: Annotated[Optional[str], typer.Option(help="Write JSON-lines events to FILE ('-' for stdout).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file (default: ./sceneforge.toml).")] = None,
    wait_lock: Annotated[Optional[float], typer.Option(help="Seconds to wait for another run on the same topic.")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.mp4 and contact_sheet.png.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Generate narration, images and (optionally) motion for scene files."""
    try:
        overrides = _overrides(
            out_dir=out, stages=stages, tts=tts, voice=voice, rate=rate, workflow=workflow,
            prompt_node=prompt_node, negative=negative, seed=seed, width=width, height=height,
            motion_enabled=motion, motion_workflow=motion_workflow, motion_prompt_node=motion_prompt_node,
            motion_image_node=motion_image_node, motion_length=motion_length, motion_fps=motion_fps,
            motion_seed=motion_seed, lock_wait=wait_lock,
            comfy_urls=tuple(comfy_url) if comfy_url else None,
            only_scenes=frozenset(scene) if scene else None,
            offline=True if offline else None, force=True if force else None,
            sequential=True if sequential else None,
        )
        if stages and motion is None and "motion" in {x.strip() for x in stages.split(",")}:
            overrides["motion_enabled"] = True  # asking for the motion stage asks for motion
        settings = load_settings(overrides, config_file=config)
        if "motion" in settings.stages and stages and not settings.motion_enabled:
            raise ConfigError("--stages includes motion but motion is disabled (--no-motion or MOTION_ENABLED=false)")
        if events == "-" and json_out:
            raise ConfigError("--events - and --json both write to stdout; give --events a file")
        if topic is not None and len(files) > 1:
            raise ConfigError("--topic names one topic; give one scene file with it (each file has its own topic)")
        sfs = _load_all(files, topic, settings)
        _check_engines(settings)
        if scene:
            for sf in sfs:
                bad = sorted(n for n in scene if n < 1 or n > len(sf.scenes))
                if bad:
                    raise ConfigError(f"--scene {bad[0]}: {sf.topic} has scenes 1 to {len(sf.scenes)}")
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        raise typer.Exit(_fail(exc, debug)) from None

    code = _run_files(sfs, settings, json_out=json_out, events=events, preview=preview, debug=debug)
    raise typer.Exit(code)


def _check_engines(settings: Settings) -> None:
    """Unknown backend names are usage errors, found before any work."""
    from .images.base import image_registry
    from .motion.base import motion_registry
    from .tts.base import tts_registry

    if settings.wants("audio"):
        tts_registry.get(settings.tts_engine)
    if settings.wants("image"):
        image_registry.get(settings.image_engine)
    if settings.run_motion:
        motion_registry.get(settings.motion_engine)


def _load_all(files: list[Path], topic: str | None, settings: Settings) -> list[SceneFile]:
    """Validate every file before any work starts; report every problem at once."""
    need_prompt = settings.wants("image") or settings.run_motion
    problems: list[str] = []
    out: list[SceneFile] = []
    for f in files:
        try:
            out.append(load_scene_file(f, topic=topic, need_script="audio" in settings.stages, need_prompt=need_prompt))
        except SceneValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SceneValidationError(problems)
    from .layout import slugify

    slugs = [slugify(sf.topic) for sf in out]
    dup = {s for s in slugs if slugs.count(s) > 1}
    if dup:
        raise ConfigError(f"two scene files share the topic folder {sorted(dup)[0]!r}; give them different topics")
    return out


def _run_files(sfs: list[SceneFile], settings: Settings, *, json_out: bool, events: str | None, preview: bool, debug: bool) -> int:
    from .pipeline import run_many

    with ExitStack() as stack:
        sinks = []
        view = ProgressView(err, enabled=not json_out and err.is_terminal)
        sinks.append(view)
        if events:
            try:
                stream = sys.stdout if events == "-" else stack.enter_context(open(events, "w", encoding="utf-8"))
            except OSError as exc:
                return _fail(ConfigError(f"--events {events}: cannot write: {exc.strerror}"), debug)
            sinks.append(JsonLinesSink(stream))

        def emit(ev: Event) -> None:
            for s in sinks:
                s(ev)

        stack.enter_context(view)
        try:
            results = asyncio.run(run_many(sfs, settings, emit=emit))
        except Exception as exc:  # noqa: BLE001 - backends that cannot be built (workflow, length, size)
            return _fail(exc, debug)

    code = 0
    for sf, exc in results:
        if exc is not None:
            if len(results) > 1:
                err.print(f"{sf.topic} ({sf.path}):", markup=False)  # which file the error belongs to
            code = max(code, _fail(exc, debug))
    if not json_out:
        view.summary(sfs, settings)
    if preview and code == 0:
        code = _preview_all(sfs, settings, debug)
    if json_out:
        payload = [sf.state() for sf in sfs]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False, indent=2))
    return code


def _preview_all(sfs: list[SceneFile], settings: Settings, debug: bool) -> int:
    """``run --preview``: preview every topic of the run. The result lines go to
    stderr with the run's summary, so ``--json`` keeps stdout pure JSON."""
    from .layout import TopicLayout

    code = 0
    for sf in sfs:
        code = max(code, _preview_dir(TopicLayout.for_topic(settings.out_dir, sf.topic).root, debug))
    return code


def _encode_progress(folder: Path) -> Any:
    """A rich bar on stderr for the preview encode; silent when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"encoding {folder.name}/preview.mp4", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _preview_dir(folder: Path, debug: bool, out: Console | None = None) -> int:
    """Write ``folder``'s preview.mp4 and contact_sheet.png; print both paths and the duration on ``out``.

    Exit codes: 2 when scenes.json or an asset is missing or unusable (the
    message names the scene; the fix is to run ``sceneforge run`` again), 1 when
    encoding fails. ``run``'s own exit codes are decided by :func:`_fail` alone.
    """
    from .errors import AssetMissingError

    try:
        from .preview import make_contact_sheet, make_preview

        if not (folder / "scenes.json").is_file():
            raise AssetMissingError(f"{folder}: no scenes.json here; run `sceneforge run` first")
        with _encode_progress(folder) as progress:
            task = progress.add_task("preview", total=None)
            res = make_preview(folder, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        sheet = make_contact_sheet(folder)
    except Exception as exc:  # noqa: BLE001 - every error becomes a clean message
        code = _fail(exc, debug)
        return 2 if isinstance(exc, AssetMissingError) else code
    out = err if out is None else out
    out.print(f"preview: {res.path} ({res.duration:.1f} s)", markup=False)
    out.print(f"contact sheet: {sheet}", markup=False)
    return 0


@app.command("preview")
def preview_cmd(
    folder: Annotated[Path, typer.Argument(help="A topic folder: <out>/<topic>.")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write preview.mp4 (720x1280, narration, subtitles) and contact_sheet.png for a finished run.

    Exit codes: 0 done, 2 scenes.json or an asset is missing (run `sceneforge run` first), 1 encoding failed.
    """
    stdout = Console(highlight=False, soft_wrap=True)
    raise typer.Exit(_preview_dir(folder, debug, out=stdout))


@app.command()
def doctor(
    comfy_url: Annotated[Optional[list[str]], typer.Option("--comfy-url", help="ComfyUI server URL (repeatable).")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="Workflow to check against the server.")] = None,
    motion_workflow: Annotated[Optional[str], typer.Option(help="Motion workflow to check.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file.")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Check ComfyUI servers and workflows: reachability, devices, queue, nodes, model files."""
    try:
        settings = load_settings(
            _overrides(comfy_urls=tuple(comfy_url) if comfy_url else None, workflow=workflow, motion_workflow=motion_workflow),
            config_file=config,
        )
        from .doctor import run_doctor

        ok = asyncio.run(run_doctor(settings, err, check_motion=motion_workflow is not None or settings.motion_enabled))
    except Exception as exc:  # noqa: BLE001
        raise typer.Exit(_fail(exc, debug)) from None
    raise typer.Exit(0 if ok else 1)


@workflow_app.command("inspect")
def workflow_inspect(
    file: Annotated[str, typer.Argument(help="Bundled workflow name or API-format JSON file.")],
    kind: Annotated[Optional[str], typer.Option(help="image or motion (default: a bundled workflow's own kind, else image).")] = None,
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) for the prompt.")] = None,
    image_node: Annotated[Optional[str], typer.Option(help="LoadImage node (motion).")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Show what sceneforge will inject where in a workflow."""
    try:
        from rich.table import Table

        from .comfy.workflow import Workflow
        from .workflows import BUNDLED_KINDS, bundled_kind

        if kind is None:
            kind = bundled_kind(file) if file in BUNDLED_KINDS else "image"
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
        raise typer.Exit(_fail(exc, debug)) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
