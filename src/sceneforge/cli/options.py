"""The run options, declared once for every face that runs topics (``run``, ``serve``, and ``mcp``).

A run option says how topics are made: where they go, which engines, workflows, nodes, sizes, seeds,
whether motion is made, the order of the jobs, the config file. :class:`RunOptions` declares each one
once, as a field whose annotation is its typer option; :func:`with_run_options` adds all of them to a
typer command, which receives them as one ``options: RunOptions`` argument; and
:meth:`RunOptions.overrides` maps them to the settings overrides :func:`sceneforge.config.load_settings`
takes. ``run`` applies them to the topics it is given, ``serve`` (and ``mcp``) to every topic as its
defaults. A new face that runs topics only needs::

    @with_run_options
    def face(..., *, options: RunOptions) -> None:
        settings = load_settings(options.overrides(), config_file=options.config)

The flags of one invocation (``--topic``, ``--scene``, ``--force``, ``--json``, ``--events``,
``--preview``, ``--wait-lock``) are not run options: they stay with ``run``.
``tests/cli/test_run_options.py`` fails when a face lacks a run option.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import overrides

__all__ = ["RunOptions", "with_run_options", "RUN_OPTION_NAMES", "Debug", "Concurrency", "ComfyUrls", "WorkflowName",
           "MotionWorkflowName", "ConfigFile", "TopicFolder"]

# Options and arguments more than one command takes, declared once (a command's parameter annotated with one).
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
Concurrency = Annotated[Optional[int], typer.Option(help="Topics running at once (default 2).")]
ComfyUrls = Annotated[Optional[list[str]], typer.Option(
    "--comfy-url", help="ComfyUI server URL (repeatable): one pool for every topic.")]
WorkflowName = Annotated[Optional[str], typer.Option(help="Text-to-image workflow: bundled name or API-format file.")]
MotionWorkflowName = Annotated[Optional[str], typer.Option(help="Wan2.2 workflow: bundled name or file.")]
ConfigFile = Annotated[Optional[Path], typer.Option(help="Config file (default: ./sceneforge.toml).")]
TopicFolder = Annotated[Path, typer.Argument(help="A topic folder: <out>/<topic>.")]


@dataclass(frozen=True)
class RunOptions:
    """Every run option, as the command line gives it (``None``: not given, the settings decide)."""

    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder: where topics are written (default: output).")] = None
    offline: Annotated[bool, typer.Option("--offline", help="Use the offline backends: espeak, storyboard, kenburns.")] = False
    stages: Annotated[Optional[str], typer.Option(help="Stages to run, e.g. audio,image,motion.")] = None
    tts: Annotated[Optional[str], typer.Option(help="Narration engine: edge, espeak, openai.")] = None
    voice: Annotated[Optional[str], typer.Option(help="Voice (engine-specific).")] = None
    rate: Annotated[Optional[float], typer.Option(help="Speech rate multiplier (1.0 normal).")] = None
    comfy_url: ComfyUrls = None
    workflow: WorkflowName = None
    prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) that takes the prompt.")] = None
    reference_node: Annotated[Optional[str], typer.Option(help="LoadImage node (title or id) for the reference image; default: the one titled 'reference'.")] = None
    negative: Annotated[Optional[str], typer.Option(help="Negative prompt.")] = None
    seed: Annotated[Optional[int], typer.Option(help="Fixed image seed (default: random, recorded).")] = None
    width: Annotated[Optional[int], typer.Option(help="Image width.")] = None
    height: Annotated[Optional[int], typer.Option(help="Image height.")] = None
    motion: Annotated[Optional[bool], typer.Option("--motion/--no-motion", help="Make motion frames.")] = None
    motion_workflow: MotionWorkflowName = None
    motion_prompt_node: Annotated[Optional[str], typer.Option(help="Node (title or id) for the motion prompt.")] = None
    motion_image_node: Annotated[Optional[str], typer.Option(help="LoadImage node (title or id) for the motion image.")] = None
    motion_length: Annotated[Optional[int], typer.Option(help="Frames per clip (4k+1 for Wan).")] = None
    motion_fps: Annotated[Optional[float], typer.Option(help="Frames per second.")] = None
    motion_seed: Annotated[Optional[int], typer.Option(help="Fixed motion seed.")] = None
    sequential: Annotated[bool, typer.Option("--sequential", help="The original system's order: stage by stage, one job at a time.")] = False
    config: ConfigFile = None
    debug: Debug = False

    def overrides(self) -> dict[str, Any]:
        """The settings these options override (``config`` and ``debug`` are not settings)."""
        return overrides(
            out_dir=self.out, offline=True if self.offline else None, stages=self.stages, tts=self.tts,
            voice=self.voice, rate=self.rate, comfy_urls=tuple(self.comfy_url) if self.comfy_url else None,
            workflow=self.workflow, prompt_node=self.prompt_node, reference_node=self.reference_node,
            negative=self.negative, seed=self.seed, width=self.width, height=self.height,
            motion_enabled=self.motion, motion_workflow=self.motion_workflow,
            motion_prompt_node=self.motion_prompt_node, motion_image_node=self.motion_image_node,
            motion_length=self.motion_length, motion_fps=self.motion_fps, motion_seed=self.motion_seed,
            sequential=True if self.sequential else None,
        )


#: The parameter name of every run option, in declaration order.
RUN_OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(RunOptions))


def _run_parameters() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(RunOptions, include_extras=True)  # the typer option stays in Annotated
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
            for f in fields(RunOptions)]


def with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command every run option; it receives them as ``options: RunOptions``.

    The command's own parameters come first (its arguments and per-invocation flags), the run options
    after them; a command declaring a run option itself is an error, so each is declared once.
    """
    own = inspect.signature(command, eval_str=True)
    if "options" not in own.parameters:
        raise TypeError(f"{command.__name__} must take an 'options: RunOptions' parameter")
    mine = [p for p in own.parameters.values() if p.name != "options"]
    twice = sorted({p.name for p in mine} & set(RUN_OPTION_NAMES))
    if twice:
        raise TypeError(f"{command.__name__} declares run options itself: {', '.join(twice)}")

    @functools.wraps(command)
    def face(**given: Any) -> None:
        options = RunOptions(**{name: given.pop(name) for name in RUN_OPTION_NAMES if name in given})
        command(**given, options=options)

    params = mine + _run_parameters()
    face.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    face.__annotations__ = {p.name: p.annotation for p in params} | {"return": own.return_annotation}
    return face
