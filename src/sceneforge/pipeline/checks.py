"""What scenes name beyond their text, checked before any work: reference images, workflows, voices.

Paths a scene gives (``reference_image``, a ``workflow`` file) are relative to its scene
file (or the working folder for a state given in code); they are made absolute here, so
``scenes.json`` written elsewhere still points at the same files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..backend import Backend
from ..comfy.backend import ComfyBackend
from ..comfy.graphs.preflight import preflight
from ..comfy.graphs.workflow import Workflow
from ..config import Settings
from ..errors import ConfigError, WorkflowError
from ..layout import TopicLayout
from ..media import NotAnImage, TooManyPixels, open_bounded
from ..scenes import Scene, SceneFile
from ..tts.base import TTSBackend
from .context import RunContext
from .steps import STEPS

__all__ = ["resolve_scene_paths", "check_references", "check_requests", "check_voices", "check_on_servers"]

_PATH_FIELDS = ("reference_image", "workflow", "motion_workflow")


def _is_path(field: str, value: str) -> bool:
    """A reference is always a path; a workflow is a path when it looks like one (else a bundled name)."""
    return field == "reference_image" or "/" in value or "\\" in value or value.lower().endswith(".json")


def _absolute(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def resolve_scene_paths(sf: SceneFile, base: Path | None = None) -> None:
    """Make every path a scene (or the topic) names absolute, relative to the scene file
    (or ``base``, else the working folder, for a state given in code)."""
    base = sf.path.parent if sf.path is not None else (base or Path.cwd())
    for scene in sf.scenes:
        for name in _PATH_FIELDS:
            value = getattr(scene, name)
            if isinstance(value, str) and value.strip() and _is_path(name, value):
                setattr(scene, name, _absolute(value, base))
    if sf.reference_image is not None:
        sf.extra["reference_image"] = _absolute(sf.reference_image, base)


def _reference_problem(path: str, limit_mb: float) -> str | None:
    p = Path(path)
    if not p.is_file():
        return f"reference_image {path} does not exist"
    size = p.stat().st_size
    if size > limit_mb * 1024 * 1024:
        return f"reference_image {path} is {size / 1048576:.1f} MB, over the {limit_mb:g} MB limit (reference_max_mb)"
    try:
        with open_bounded(p) as im:
            im.verify()
    except TooManyPixels as big:
        if big.width is None:
            return f"reference_image {path} declares more pixels than a reference needs (a decompression bomb?)"
        return f"reference_image {path} is {big.width}x{big.height}, more pixels than a reference needs"
    except NotAnImage:
        return f"reference_image {path} is not an image Pillow can read"
    return None


def check_references(sf: SceneFile, settings: Settings) -> list[str]:
    """Every reference image exists, is an image and is within the size limit."""
    problems = []
    if sf.reference_image is not None and (p := _reference_problem(sf.reference_image, settings.reference_max_mb)):
        problems.append(f"{sf.topic}: {p}")
    for n, scene in _selected(sf, settings):
        if scene.reference_image and (p := _reference_problem(scene.reference_image, settings.reference_max_mb)):
            problems.append(f"scene {n}: {p}")
    return problems


def _selected(sf: SceneFile, settings: Settings) -> list[tuple[int, Scene]]:
    only = settings.only_scenes
    return [(n, s) for n, s in enumerate(sf.scenes, 1) if only is None or n in only]


def check_workflow_names(sf: SceneFile, settings: Settings, backends: dict[str, Backend]) -> list[str]:
    """With backends that use no workflow (offline drafts), the workflows named are still checked
    (exists, is a workflow of its kind), so a draft run does not hide a typo the real run would hit."""
    problems: list[str] = []
    for stage, field in (("image", "workflow"), ("motion", "motion_workflow")):
        backend = backends.get(stage)
        if backend is None or isinstance(backend, ComfyBackend):
            continue  # not run, or it checks its workflows itself (check_requests)
        named = {getattr(scene, field) or getattr(settings, field): n for n, scene in _selected(sf, settings)}
        for name, n in named.items():
            try:
                Workflow.load(name, kind=stage)
            except (WorkflowError, ConfigError) as exc:
                own = getattr(sf.scenes[n - 1], field)
                problems.append(f"scene {n}: {field}: {exc}" if own else f"--{field.replace('_', '-')}: {exc}")
    return problems


def check_requests(sf: SceneFile, settings: Settings, backends: dict[str, Backend]) -> list[str]:
    """Each image and motion backend's own checks of every selected scene's request."""
    layout = TopicLayout.for_topic(settings.out_dir, sf.topic)
    ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, reference=sf.reference_image)
    problems: list[str] = []
    for stage in ("image", "motion"):
        backend: Any = backends.get(stage)
        if backend is None:
            continue
        step = STEPS[stage](ctx, backend)
        for n, scene in _selected(sf, settings):
            problems.extend(backend.check(step.request(n, scene)))
    return problems


def _wanted_voices(sf: SceneFile, settings: Settings) -> dict[str, list[int]]:
    wanted: dict[str, list[int]] = {}
    for n, scene in _selected(sf, settings):
        voice = scene.voice or settings.voice  # only voices someone named: an engine's default is its own
        if voice:
            wanted.setdefault(voice, []).append(n)
    return wanted


async def check_voices(sf: SceneFile, settings: Settings, tts: TTSBackend) -> list[str]:
    """Voices the narration engine does not have, by scene, with the nearest names it has."""
    # A walk over every scene: in a thread when there are many (100 000 scenes take a third of a second).
    wanted = await asyncio.to_thread(_wanted_voices, sf, settings) if len(sf.scenes) > 1000 \
        else _wanted_voices(sf, settings)
    if not wanted:
        return []
    unknown = await tts.unknown_voices(list(wanted))
    engine = f"{'an' if tts.name[:1] in 'aeiou' else 'a'} {tts.name} voice"
    problems = []
    for voice, near in unknown.items():
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        own = [n for n in wanted[voice] if sf.scenes[n - 1].voice]
        runs = [n for n in wanted[voice] if not sf.scenes[n - 1].voice]
        problems += [f"scene {n}: voice {voice!r} is not {engine}{hint}" for n in own]
        if runs:  # the run's --voice: said once, for every scene that uses it
            problems.append(f"{_scenes_text(runs)}: voice {voice!r} (the run's --voice) is not {engine}{hint}")
    return problems


def _scenes_text(numbers: list[int]) -> str:
    return f"scene {numbers[0]}" if len(numbers) == 1 else "scenes " + ", ".join(map(str, numbers))


async def check_on_servers(sf: SceneFile, settings: Settings, backends: dict[str, Backend]) -> list[str]:
    """Every workflow the selected scenes will submit, checked against the servers' ``/object_info``."""
    layout = TopicLayout.for_topic(settings.out_dir, sf.topic)
    ctx = RunContext(settings=settings, layout=layout, topic=sf.topic, reference=sf.reference_image)
    graphs: dict[str, dict[str, Any]] = {}
    users: dict[str, list[int]] = {}
    for stage in ("image", "motion"):
        backend: Any = backends.get(stage)
        if backend is None or not hasattr(backend, "sample_graph"):
            continue  # not a ComfyUI backend
        step = STEPS[stage](ctx, backend)
        for n, scene in _selected(sf, settings):
            try:
                label, graph = backend.sample_graph(step.request(n, scene))
            except (WorkflowError, ConfigError):
                continue  # the request's own check already said why
            graphs.setdefault(label, graph)
            users.setdefault(label, []).append(n)
    if not graphs:
        return []
    refused = await preflight(settings, graphs)
    return [f"{_scenes_text(users[label])}: {label}: {line}" for label, lines in refused.items() for line in lines]
