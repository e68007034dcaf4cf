"""Scenes: the model, reading scene files, and validation before any work starts.

A scene file is JSON: either a list of scenes or a state object
``{"topic": ..., "scenes": [...]}``. Validation collects every problem at once,
one line each, naming the scene (``scene N``, numbered from 1) and the field.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import SceneValidationError, UnsafePathError
from .input_checks import has_visible_text, json_problem, shown, unicode_problem
from .layout import slugify

__all__ = ["Scene", "SceneFile", "load_scene_file", "decode_scene_json", "parse_state", "validate_scenes", "scenes_to_dicts"]


class Scene(BaseModel):
    """One planned scene. Unknown fields are kept and written back unchanged.

    Input fields are the plan (``script``, ``image_prompt``) and optional per-scene
    choices that win over the run's settings. Output fields are set by the stages,
    only from a fresh generation or a valid cache record, never trusted from the input.
    ``motion_seed`` is both: given in the input it pins the scene's motion seed, and
    after a run it records the seed used (the same value when pinned). One that comes with
    recorded frames (``motion_frames_path``, as in ``scenes.json``) is taken as recorded, not
    as a pin, so feeding a run's output back in and forcing a re-roll draws a new seed.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=False)

    # --- the plan
    script: str
    image_prompt: str | None = None
    motion_prompt: str | None = None
    # --- per-scene choices (None: the run's settings)
    voice: str | None = None
    rate: float | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    reference_image: str | None = None
    workflow: str | None = None
    motion_workflow: str | None = None
    # --- outputs
    audio_path: str | None = None
    audio_duration: float | None = None
    subtitle_path: str | None = None
    image_path: str | None = None
    image_seed: int | None = None
    motion_frames_path: list[str] | None = None
    motion_fps: float | None = None
    motion_seed: int | None = None  # also an input: pins the scene's motion seed
    motion_video_path: str | None = None

    @property
    def motion_seed_pin(self) -> int | None:
        """The motion seed the input pinned (a run drops a seed that came with recorded frames first)."""
        return self.motion_seed

    def to_dict(self) -> dict[str, Any]:
        """The scene as a plain dict: the input's fields (known and unknown) plus what was set."""
        return self.model_dump(mode="json", exclude_unset=True)


class SceneFile(BaseModel):
    """A loaded scene file: its topic and its scenes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    topic: str
    scenes: list[Scene]
    path: Path | None = None
    extra: dict[str, Any] = {}

    def state(self) -> dict[str, Any]:
        """The original system's state dict ``{"topic", "scenes": [dict, ...]}`` (other top-level keys kept)."""
        return {**self.extra, "topic": self.topic, "scenes": scenes_to_dicts(self.scenes)}

    @property
    def reference_image(self) -> str | None:
        """The topic's reference image (a scene's own ``reference_image`` wins), if any."""
        value = self.extra.get("reference_image")
        return value if isinstance(value, str) and value.strip() else None

    def reference_for(self, scene: Scene) -> str | None:
        """The reference image scene ``scene`` uses: its own, else the topic's."""
        return scene.reference_image or self.reference_image


_PATH_FIELDS_STR = ("audio_path", "image_path", "subtitle_path", "motion_video_path")


def _type_name(v: Any) -> str:
    return "null" if v is None else {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(v), type(v).__name__
    )


def _check_text(problems: list[str], where: str, field: str, value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            problems.append(f"{where}: {field} is missing")
        return
    if not isinstance(value, str):
        problems.append(f"{where}: {field} must be a string, got {_type_name(value)}")
    elif bad := unicode_problem(value):
        problems.append(f"{where}: {field} {bad}")
    elif not value.strip():
        problems.append(f"{where}: {field} is empty")
    elif not has_visible_text(value):
        # Zero-width spaces, BOMs, soft hyphens...: narrated as silence, drawn as nothing.
        problems.append(f"{where}: {field} is empty (it has only invisible characters)")
    elif "\x00" in value:
        problems.append(f"{where}: {field} contains a NUL character")


#: The largest seed a ComfyUI server accepts (an unsigned 64-bit integer).
SEED_MAX = 2**64 - 1


def _check_scene_choices(problems: list[str], where: str, raw: Mapping[str, Any]) -> None:
    """The optional per-scene choices: right types and ranges."""
    for name in ("voice", "negative_prompt", "reference_image", "workflow", "motion_workflow"):
        if raw.get(name) is not None:
            _check_text(problems, where, name, raw[name], required=False)
    rate = raw.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.1 < rate <= 4.0):
        problems.append(f"{where}: rate must be a number above 0.1 and at most 4.0 (1.0 is normal), got {rate!r}")
    for name in ("seed", "motion_seed"):
        v = raw.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= SEED_MAX):
            problems.append(f"{where}: {name} must be a whole number from 0 to 2^64-1, got {v!r}")
    for name in ("audio_duration", "motion_fps"):
        v = raw.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            problems.append(f"{where}: {name} must be a number, got {_type_name(v)}")
    v = raw.get("image_seed")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        problems.append(f"{where}: image_seed must be a whole number, got {_type_name(v)}")


def validate_scenes(
    raw_scenes: Any,
    *,
    need_script: bool = True,
    need_prompt: bool = True,
    label: str = "",
) -> list[Scene]:
    """Check raw scene dicts and build :class:`Scene` objects.

    Raises :class:`SceneValidationError` (a ValueError) listing every problem.
    ``need_prompt`` is true when the image (or motion) stage will run.
    """
    prefix = f"{label}: " if label else ""
    if raw_scenes is None or (isinstance(raw_scenes, Sequence) and not isinstance(raw_scenes, str) and not raw_scenes):
        raise SceneValidationError(f"{prefix}scenes is missing or empty: nothing to generate")
    if isinstance(raw_scenes, (str, bytes)) or not isinstance(raw_scenes, Sequence):
        raise SceneValidationError(f"{prefix}scenes must be a list, got {_type_name(raw_scenes)}")
    problems: list[str] = []
    for i, raw in enumerate(raw_scenes, 1):
        where = f"{prefix}scene {i}"
        if isinstance(raw, Scene):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be an object with script and image_prompt, got {_type_name(raw)}")
            continue
        _check_text(problems, where, "script", raw.get("script"), required=need_script)
        if need_prompt or raw.get("image_prompt") is not None:
            _check_text(problems, where, "image_prompt", raw.get("image_prompt"), required=need_prompt)
        if raw.get("motion_prompt") is not None:
            _check_text(problems, where, "motion_prompt", raw["motion_prompt"], required=False)
        for field in _PATH_FIELDS_STR:
            v = raw.get(field)
            if v is not None and not isinstance(v, str):
                problems.append(f"{where}: {field} must be a string, got {_type_name(v)}")
        _check_scene_choices(problems, where, raw)
        mf = raw.get("motion_frames_path")
        if mf is not None and not (isinstance(mf, list) and all(isinstance(x, str) for x in mf)):
            problems.append(f"{where}: motion_frames_path must be a list of strings")
        _check_writable_fields(problems, where, raw, skip=_TEXT_FIELDS)
    if problems:
        raise SceneValidationError(problems)
    scenes = []
    for raw in raw_scenes:
        data = raw.to_dict() if isinstance(raw, Scene) else dict(raw)
        had_script = data.get("script") is not None
        if not had_script:
            data["script"] = ""  # an image-only run may have none; it is not written back
        scene = Scene.model_validate(data)
        if not had_script and "script" not in raw:
            scene.model_fields_set.discard("script")
        scenes.append(scene)
    _check_serializable(scenes, prefix)
    return scenes


_TEXT_FIELDS = frozenset({"script", "image_prompt", "motion_prompt"})  # checked by _check_text


def _check_writable_fields(problems: list[str], where: str, raw: Mapping[Any, Any], *, skip: frozenset[str]) -> None:
    """Every field must survive the trip back to scenes.json (see :mod:`sceneforge.input_checks`)."""
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"{where}: field names must be strings, got {_type_name(key)} {key!r}")
            continue
        if key in skip:
            continue
        if bad := unicode_problem(key):
            problems.append(f"{where}: field name '{shown(key)}' {bad}")
        elif bad := json_problem(value):
            problems.append(f"{where}: field {key!r} {bad}")


def _check_serializable(scenes: list[Scene], prefix: str) -> None:
    """The last guard: each scene serializes as scenes.json will (types JSON lacks, like objects)."""
    problems = []
    for i, scene in enumerate(scenes, 1):
        try:
            json.dumps(scene.to_dict(), ensure_ascii=False)
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(f"{prefix}scene {i}: cannot be written to scenes.json: {exc}")
    if problems:
        raise SceneValidationError(problems)


def _check_topic(topic: Any, where: str) -> str:
    if not isinstance(topic, str):
        raise SceneValidationError(f"{where}topic must be a string, got {_type_name(topic)}")
    control = next((c for c in topic if unicodedata.category(c) == "Cc"), None)
    if control is not None:  # a name shown in listings, titles and logs
        raise SceneValidationError(f"{where}topic contains a control character U+{ord(control):04X}")
    if bad := unicode_problem(topic):
        raise SceneValidationError(f"{where}topic {bad}")
    try:
        slugify(topic)
    except UnsafePathError as exc:
        raise SceneValidationError(f"{where}topic: {exc}") from None
    # One title, however its letters were composed: "한국" typed as syllables (NFC) or as jamo (NFD, macOS
    # file names) is the same topic, in its folder's claim and wherever it is compared.
    return unicodedata.normalize("NFC", topic)


def _check_extra(extra: dict[Any, Any], label: str) -> None:
    """Top-level fields other than scenes and topic are written back as they are: they must be writable."""
    where = label or "state"
    problems: list[str] = []
    _check_writable_fields(problems, where, extra, skip=frozenset())
    for key, value in extra.items():
        if problems:
            break
        try:
            json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(f"{where}: field {key!r} cannot be written to scenes.json: {exc}")
    if problems:
        raise SceneValidationError(problems)


def parse_state(
    data: Any,
    *,
    topic: str | None = None,
    default_topic: str | None = None,
    need_script: bool = True,
    need_prompt: bool = True,
    label: str = "",
) -> SceneFile:
    """Turn a decoded scene file / state into a :class:`SceneFile`, validating everything."""
    prefix = f"{label}: " if label else ""
    extra: dict[str, Any] = {}
    if isinstance(data, Mapping):
        if "scenes" not in data:
            raise SceneValidationError(f"{prefix}scenes is missing: expected a list of scenes or an object with a 'scenes' list")
        raw_scenes = data["scenes"]
        file_topic = data.get("topic")
        extra = {k: v for k, v in data.items() if k not in ("scenes", "topic")}
        _check_extra(extra, label)
        if extra.get("reference_image") is not None:
            top: list[str] = []
            _check_text(top, f"{prefix}topic", "reference_image", extra["reference_image"], required=False)
            if top:
                raise SceneValidationError(top)
    elif isinstance(data, list):
        raw_scenes, file_topic = data, None
    else:
        raise SceneValidationError(
            f"{prefix}expected a list of scenes or an object with a 'scenes' list, got {_type_name(data)}"
        )
    if topic is not None:
        chosen = _check_topic(topic, f"{prefix}--")
    elif file_topic is not None:
        chosen = _check_topic(file_topic, prefix)
    elif default_topic:
        chosen = _check_topic(default_topic, prefix)
    else:
        raise SceneValidationError(f"{prefix}topic is missing: give one with --topic")
    scenes = validate_scenes(raw_scenes, need_script=need_script, need_prompt=need_prompt, label=label)
    return SceneFile(topic=chosen, scenes=scenes, extra=extra)


def decode_scene_json(raw: bytes, label: str = "") -> Any:
    """Decode a scene file's bytes (UTF-8, a BOM allowed) as JSON; one clear line when that fails.

    Shared by files (:func:`load_scene_file`) and request bodies (the service), so both
    say the same thing about the same bytes.
    """
    prefix = f"{label}: " if label else ""
    if not raw.strip():
        raise SceneValidationError(f"{prefix}file is empty")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SceneValidationError(f"{prefix}not a UTF-8 text file (is it binary?)") from None
    except json.JSONDecodeError as exc:
        raise SceneValidationError(f"{prefix}not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:  # the only other one: an integer longer than Python converts
        raise SceneValidationError(
            f"{prefix}not usable JSON: a number has more than {sys.get_int_max_str_digits()} digits"
        ) from None
    except RecursionError:
        raise SceneValidationError(f"{prefix}not usable JSON: arrays or objects are nested too deeply") from None


def load_scene_file(
    path: Path | str,
    *,
    topic: str | None = None,
    need_script: bool = True,
    need_prompt: bool = True,
) -> SceneFile:
    """Read and validate a scene file. The topic is ``topic``, else the file's, else the file name."""
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise SceneValidationError(f"{label}: file does not exist")
    if path.is_dir():
        raise SceneValidationError(f"{label}: is a folder, expected a JSON scene file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SceneValidationError(f"{label}: cannot read: {exc.strerror}") from None
    data = decode_scene_json(raw, label)
    sf = parse_state(
        data, topic=topic, default_topic=path.stem, need_script=need_script, need_prompt=need_prompt, label=label
    )
    sf.path = path
    return sf


def scenes_to_dicts(scenes: Iterable[Scene | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Scenes as plain dicts (the original system's shape)."""
    return [s.to_dict() if isinstance(s, Scene) else dict(s) for s in scenes]
