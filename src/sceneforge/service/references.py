"""What a client may name on this machine: reference images it uploaded, and bundled workflows.

Through the service, a scene's (or a topic's) ``reference_image`` names a file the client
uploaded into the topic's folder (``POST /api/topics/{slug}/references`` answers its name,
``references/<hash>.<ext>``), and ``workflow`` / ``motion_workflow`` a bundled workflow.
Any other path would let a request read files of the machine the service runs on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .. import SceneValidationError, UnsafePathError
from ..pipeline import BUNDLED_KINDS, NotAnImage, TooManyPixels, TopicLayout, atomic_write_bytes, open_bounded

__all__ = ["REFERENCES", "confine_scene_paths", "confine_edit", "save_reference"]

#: The folder of a topic that uploaded reference images go to.
REFERENCES = "references"
_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


def _reference_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return None  # the type is the scene validation's to report
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or len(path.parts) != 2 or path.parts[0] != REFERENCES:
        return (f"reference_image {value!r}: through the service a reference is an uploaded file "
                f"({REFERENCES}/<name>, answered by POST /api/topics/<slug>/references)")
    return None


def _workflow_problem(field: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip() and value not in BUNDLED_KINDS:
        return f"{field} {value!r}: through the service choose a bundled workflow ({', '.join(BUNDLED_KINDS)})"
    return None


def confine_scene_paths(data: Mapping[str, Any] | list[Any]) -> tuple[Any, list[str]]:
    """Paths a client may not name, as problems (one line each, naming the scene), and ``data``
    without them (so nothing ever reads them). References are read relative to the topic's folder."""
    state: dict[str, Any] = {"scenes": list(data)} if isinstance(data, list) else dict(data)
    problems: list[str] = []
    if (p := _reference_problem(state.get("reference_image"))) is not None:
        problems.append(f"topic: {p}")
        state.pop("reference_image")
    scenes = state.get("scenes")
    if isinstance(scenes, list):
        state["scenes"] = [_confine_scene(n, s, problems) for n, s in enumerate(scenes, 1)]
    return (state["scenes"] if isinstance(data, list) else state), problems


def confine_edit(n: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a scene edit, refused (:class:`SceneValidationError`) when they name a path."""
    problems: list[str] = []
    out = _confine_scene(n, changes, problems)
    if problems:
        raise SceneValidationError(problems)
    return dict(out)


def _confine_scene(n: int, scene: Any, problems: list[str]) -> Any:
    if not isinstance(scene, Mapping):
        return scene
    scene = dict(scene)
    if (p := _reference_problem(scene.get("reference_image"))) is not None:
        problems.append(f"scene {n}: {p}")
        scene.pop("reference_image")
    for field in ("workflow", "motion_workflow"):
        if (p := _workflow_problem(field, scene.get(field))) is not None:
            problems.append(f"scene {n}: {p}")
            scene.pop(field)
    return scene


def save_reference(layout: TopicLayout, data: bytes, max_bytes: int) -> str:
    """Keep an uploaded reference image in the topic's folder under a name made from its bytes.

    Returns the value for ``reference_image`` (``references/<hash>.<ext>``). Refuses (one
    line) what is too big, not an image, or more pixels than any model takes.
    """
    if len(data) > max_bytes:
        raise SceneValidationError(f"reference_image: {len(data) / 1048576:.1f} MB is over the "
                                   f"{max_bytes / 1048576:g} MB limit (reference_max_mb)")
    try:
        with open_bounded(data) as im:
            kind = im.format or ""
            im.load()  # decoded whole, within the pixel cap: a PNG with garbage pixel data is no image
    except TooManyPixels as exc:
        if exc.width is None:  # Pillow's own bomb guard: as before, no image
            raise SceneValidationError("reference_image: the upload is not an image (PNG, JPEG or WebP)") from None
        raise SceneValidationError(f"reference_image: {exc.width}x{exc.height} is more pixels than a "
                                   "reference needs; send a smaller picture") from None
    except NotAnImage:
        raise SceneValidationError("reference_image: the upload is not an image (PNG, JPEG or WebP)") from None
    if kind not in _FORMATS:
        raise SceneValidationError(f"reference_image: a {kind or 'unknown'} image; send PNG, JPEG or WebP")
    name = f"{hashlib.sha256(data).hexdigest()[:16]}{_FORMATS[kind]}"
    for folder in (layout.root, layout.root / REFERENCES):
        if folder.is_symlink():  # a link would lead the write out of --out
            raise UnsafePathError(f"{folder.name!r} is a link; the service writes only inside its output folder")
    dest = layout.root / REFERENCES / name
    if not dest.is_file():
        atomic_write_bytes(dest, data)
    return str(Path(REFERENCES) / name)
