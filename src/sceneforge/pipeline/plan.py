"""A checked run plan: everything that can be wrong is found before any work starts.

:func:`plan_run` is what the command line, the service and a library user share:
it loads and validates every scene file or state (every problem at once, one line
each), and checks what only makes sense for the run as a whole: the topics'
folders (two files on one folder, a folder that belongs to another topic, an
output folder that is a file), ``--scene`` numbers, backend names and the
backends' own options (a workflow that does not load, a motion length that is not
4k+1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backend import Backend, BackendResources
from ..config import STAGES, Settings
from ..errors import ConfigError, InputFileMissingError, SceneValidationError
from ..layout import TopicLayout, slugify
from ..scenes import SceneFile, load_scene_file, parse_state
from ..tts.base import TTSBackend
from .checks import (
    check_on_servers,
    check_references,
    check_requests,
    check_voices,
    check_workflow_names,
    resolve_scene_paths,
)
from .engine import build_backend
from .folder import check_topic_folder
from .steps import motion_input_problem
from .sync import run_sync

__all__ = ["RunPlan", "plan_run", "aplan_run", "parse_source", "DEFAULT_TOPIC"]

DEFAULT_TOPIC = "untitled"

#: A scene file (path), a state ``{"topic", "scenes"}``, a bare list of scenes, or an already loaded file.
Source = Path | str | Mapping[str, Any] | list[Any] | SceneFile


@dataclass
class RunPlan:
    """Validated topics and the settings they run with."""

    topics: list[SceneFile]
    settings: Settings


def parse_source(source: Source, settings: Settings, *, topic: str | None = None) -> SceneFile:
    """Load and validate one source for the stages ``settings`` runs."""
    need_script = "audio" in settings.stages
    need_prompt = settings.wants("image") or settings.run_motion
    if isinstance(source, SceneFile):
        return source
    if isinstance(source, (str, Path)):
        return load_scene_file(source, topic=topic, need_script=need_script, need_prompt=need_prompt)
    return parse_state(source, topic=topic, default_topic=DEFAULT_TOPIC, need_script=need_script,
                       need_prompt=need_prompt)


def _check_out_dir(settings: Settings) -> None:
    """The output folder, or the first part of its path that exists, must be a writable folder."""
    out = Path(settings.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the output folder {out} is a file; choose a folder with --out")
    there = out.absolute()
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        raise ConfigError(f"the output folder {out} cannot be made: {there} is a file; choose a folder with --out")
    if not os.access(there, os.W_OK | os.X_OK):
        raise ConfigError(f"the output folder {out} cannot be made: {there} is not writable; choose a folder with --out")


def _check_scenes_selected(sfs: list[SceneFile], settings: Settings) -> None:
    if settings.only_scenes is None:
        return
    for sf in sfs:
        bad = sorted(n for n in settings.only_scenes if n < 1 or n > len(sf.scenes))
        if bad:
            raise ConfigError(f"--scene {bad[0]}: {sf.topic} has scenes 1 to {len(sf.scenes)}")


def _build_backends(settings: Settings) -> dict[str, Backend]:
    """Unknown backend names and bad backend options are usage errors, found before any work."""
    return {stage: build_backend(stage, settings, BackendResources.none()) for stage in STAGES if settings.wants(stage)}


def _local_checks(sf: SceneFile, settings: Settings, backends: dict[str, Backend]) -> list[str]:
    """What can be checked on this machine: reference images, each scene's request, workflow names."""
    return (check_references(sf, settings) + check_requests(sf, settings, backends)
            + check_workflow_names(sf, settings, backends))


async def _check_scene_inputs(sfs: list[SceneFile], settings: Settings) -> None:
    """References, per-scene workflows and voices: every problem of every topic at once."""
    backends = _build_backends(settings)
    problems: list[str] = []
    try:
        for sf in sfs:
            found = await asyncio.to_thread(_local_checks, sf, settings, backends)  # per scene: off the loop
            tts = backends.get("audio")
            if isinstance(tts, TTSBackend):
                found += await check_voices(sf, settings, tts)
            if not found:  # a workflow that does not even load is not worth asking a server about
                found += await check_on_servers(sf, settings, backends)
            prefix = f"{sf.path}: " if sf.path is not None else ""  # which file, as validation says it
            problems += [prefix + p for p in found]
    finally:
        for backend in backends.values():
            await backend.aclose()
    if problems:
        raise SceneValidationError(problems)


def plan_run(sources: Sequence[Source], settings: Settings, *, topic: str | None = None,
             base: Path | None = None) -> RunPlan:
    """Validate every source and the run as a whole; raise before anything is written.

    Raises :class:`SceneValidationError` listing every problem of every source (scenes,
    reference images, per-scene workflows, voices), :class:`ConfigError` (or its
    :class:`TopicConflictError`) for a run that cannot be made as asked, and the
    backends' own errors for options they refuse. :func:`aplan_run` is the async form.
    """
    return run_sync(aplan_run(sources, settings, topic=topic, base=base))


async def aplan_run(sources: Sequence[Source], settings: Settings, *, topic: str | None = None,
                    base: Path | None = None) -> RunPlan:
    """Async form of :func:`plan_run` (asking an online engine for its voices does not block a loop).

    ``base`` is the folder relative paths in states (not files) are read from (default: the
    working folder); a scene file's own folder is always its base.
    """
    if not sources:
        raise ConfigError("no scene file or state to run")
    if topic is not None and len(sources) > 1:
        raise ConfigError("--topic names one topic; give one scene file with it (each file has its own topic)")
    # Reading and checking 100 000 scenes takes seconds: in a thread, so a loop serving others goes on.
    sfs = await asyncio.to_thread(_checked_sources, sources, settings, topic, base)
    await _check_scene_inputs(sfs, settings)
    return RunPlan(sfs, settings)


def _checked_sources(sources: Sequence[Source], settings: Settings, topic: str | None,
                     base: Path | None) -> list[SceneFile]:
    """Every source read and checked on its own and against the others (no backend asked yet)."""
    _check_out_dir(settings)
    problems: list[str] = []
    sfs: list[SceneFile] = []
    for source in sources:
        try:
            sfs.append(parse_source(source, settings, topic=topic))
        except SceneValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SceneValidationError(problems)
    slugs = [slugify(sf.topic) for sf in sfs]
    dup = sorted({s for s in slugs if slugs.count(s) > 1})
    if dup:
        raise ConfigError(f"two scene files share the topic folder {dup[0]!r}; give them different topics")
    for sf in sfs:
        check_topic_folder(sf.topic, TopicLayout.for_topic(settings.out_dir, sf.topic))
        resolve_scene_paths(sf, base)
    _check_scenes_selected(sfs, settings)
    _check_motion_inputs(sfs, settings)
    return sfs


def _check_motion_inputs(sfs: list[SceneFile], settings: Settings) -> None:
    """Motion without the image stage starts from the scenes' ``image_path``: the original system's
    FileNotFoundError when one is missing, before anything is written."""
    if not settings.run_motion or settings.wants("image"):
        return
    only = settings.only_scenes
    problems = [f"{sf.path}: {p}" if sf.path is not None else p
                for sf in sfs for n, scene in enumerate(sf.scenes, 1)
                if (only is None or n in only) and (p := motion_input_problem(n, scene))]
    if problems:
        raise InputFileMissingError(problems)
