"""Working on a topic that already ran: read it, edit a scene, re-roll one asset, go back to a take.

The topic's ``scenes.json`` is its state: the scenes as planned (with any edits)
plus what the stages made. These functions are what the command line
(``sceneforge takes``) and the service share; the generation itself is always a
normal run (:meth:`Engine.run_topic`), so the cache decides what an edit remakes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..cache import CacheHit, StageCache, file_digest
from ..config import Settings
from ..errors import AssetMissingError, ConfigError, SceneValidationError
from ..layout import TopicLayout
from ..lock import topic_lock
from ..scenes import Scene, SceneFile, parse_state
from ..takes import PIN_FIELD, STAGE_INPUTS, Take, TakeStore, recorded_motion_pin
from .context import STAGE_FIELDS, drop_fields, set_fields
from .state import write_scenes_json
from .steps import STEPS

__all__ = [
    "load_topic", "edit_scene", "edited", "show_current", "scene_pin", "reroll_settings", "pin_seed", "check_pin", "list_takes", "restore_take", "topic_dir_layout",
    "EDITABLE_FIELDS",
]

#: What a scene edit may not set: the stages own these (made or restored, never given).
_OWNED = {name for names in STAGE_FIELDS.values() for name in names} | {"image_seed"}
#: The fields an edit usually changes (others, unknown to sceneforge, are kept as given).
EDITABLE_FIELDS = ("script", "image_prompt", "motion_prompt", "negative_prompt", "voice", "rate", "seed",
                   "motion_seed")


def load_topic(layout: TopicLayout, raw: bytes | None = None) -> SceneFile:
    """The topic's state from its ``scenes.json`` (validated like any input); ``raw``: its bytes, already read."""
    try:
        data = json.loads(layout.scenes_json.read_bytes() if raw is None else raw)
    except FileNotFoundError:
        raise AssetMissingError(f"{layout.root}: no scenes.json; run the topic first") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{layout.scenes_json} cannot be read: {exc}") from None
    sf = parse_state(data, need_script=False, need_prompt=False, label=str(layout.scenes_json))
    sf.path = layout.scenes_json
    for n, scene in enumerate(sf.scenes, 1):
        _rebase_assets(layout, scene, n)
    return sf


def _rebase_assets(layout: TopicLayout, scene: Scene, n: int) -> None:
    """Asset paths a run wrote relative to its working folder (``--out output``), made absolute: the
    assets are in the topic folder whoever reads it from wherever."""
    for name in ("audio_path", "subtitle_path", "image_path", "motion_video_path"):
        value = getattr(scene, name)
        if isinstance(value, str) and not Path(value).is_absolute():
            set_fields(scene, **{name: str(layout.root.absolute() / Path(value).name)})
    frames = scene.motion_frames_path
    if frames and any(not Path(f).is_absolute() for f in frames):
        folder = layout.motion_dir(n).absolute()
        set_fields(scene, motion_frames_path=[str(folder / Path(f).name) for f in frames])


def _scene_index(sf: SceneFile, n: int) -> int:
    if not 1 <= n <= len(sf.scenes):
        raise ConfigError(f"{sf.topic} has scenes 1 to {len(sf.scenes)}, not {n}")
    return n - 1


def edit_scene(layout: TopicLayout, n: int, changes: Mapping[str, Any], *, wait: float = 30.0,
               checked: tuple[bytes, SceneFile] | None = None) -> SceneFile:
    """Change scene ``n``'s fields (``None`` removes one) and save; the next run remakes what they decide.

    Every problem is a :class:`SceneValidationError` naming the scene and the field, and
    nothing is written then. ``wait``: seconds to wait for a run that holds the topic. ``checked``:
    ``scenes.json``'s bytes and the result of this same change made to them (:func:`edited`), saved as
    it is while the file still has those bytes.
    """
    with topic_lock(layout, wait=wait):
        try:
            raw: bytes | None = layout.scenes_json.read_bytes()
        except OSError:
            raw = None  # load_topic says why
        if checked is not None and raw == checked[0]:
            sf = checked[1]
        else:
            sf = edited(load_topic(layout, raw), n, changes)
        write_scenes_json(sf, layout)
    return sf


def edited(sf: SceneFile, n: int, changes: Mapping[str, Any]) -> SceneFile:
    """``sf`` with scene ``n``'s fields changed (``None`` removes one), checked field by field; ``sf`` is
    left as it was. The run's own checks (references, voices, workflows) are :func:`aplan_run`'s."""
    owned = sorted(set(changes) & _OWNED)
    if owned:
        raise SceneValidationError([f"scene {n}: {name} is made by sceneforge and cannot be edited"
                                    for name in owned])
    i = _scene_index(sf, n)
    raw = sf.scenes[i].to_dict()
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    scenes = [s.to_dict() for s in sf.scenes]
    scenes[i] = raw
    try:
        checked = parse_state({**sf.extra, "topic": sf.topic, "scenes": scenes}, need_script=False,
                              need_prompt=False)
    except SceneValidationError as exc:
        raise SceneValidationError([p for p in exc.problems if p.startswith(f"scene {n}")] or exc.problems) from None
    return sf.model_copy(update={"scenes": [*sf.scenes[:i], checked.scenes[i], *sf.scenes[i + 1:]]})


def reroll_settings(settings: Settings, n: int, stage: str) -> Settings:
    """Settings that make a new take of scene ``n``'s ``stage`` asset (and its motion after an image)."""
    if stage not in STAGE_INPUTS:
        raise ConfigError(f"unknown stage {stage!r}; choose from {', '.join(STAGE_INPUTS)}")
    if stage == "motion" and not settings.motion_enabled:
        raise ConfigError("motion is not enabled for this topic")
    stages = ("image", "motion") if stage == "image" and settings.motion_enabled else (stage,)
    return settings.model_copy(update={"stages": stages, "only_scenes": frozenset({n}), "force": True})


def check_pin(sf: SceneFile, n: int, stage: str, seed: int | None) -> Scene:
    """Scene ``n``, when ``seed`` can be pinned for its ``stage`` (narration has no seed); else ConfigError."""
    scene = sf.scenes[_scene_index(sf, n)]
    if seed is not None and stage not in PIN_FIELD:
        raise ConfigError("narration has no seed")
    return scene


def pin_seed(sf: SceneFile, n: int, stage: str, seed: int | None) -> None:
    """For a re-roll: pin the scene's seed for ``stage`` to ``seed``, or unpin it (a new random seed)."""
    scene = check_pin(sf, n, stage, seed)
    name = PIN_FIELD.get(stage)
    if name is None:
        return
    if seed is None:
        drop_fields(scene, name)
    else:
        set_fields(scene, **{name: seed})
        if stage == "motion":  # without the frames it came with, a motion_seed is a pin
            drop_fields(scene, *STAGE_FIELDS["motion"])


def scene_pin(layout: TopicLayout, n: int, scene: Scene, stage: str) -> int | None:
    """The seed scene ``n`` pins for ``stage`` (None: random). A ``motion_seed`` beside frames is only a
    pin if it was one when they were made."""
    if stage != "motion":
        return scene.seed if stage == "image" else None
    if scene.motion_frames_path is None or scene.motion_seed is None:
        return scene.motion_seed
    return scene.motion_seed if recorded_motion_pin(StageCache(layout), n) == scene.motion_seed else None


def list_takes(layout: TopicLayout, n: int) -> dict[str, list[Take]]:
    """Scene ``n``'s takes of every stage, oldest first, the current one marked."""
    store = TakeStore(StageCache(layout))
    return {stage: store.list(stage, n) for stage in STAGE_INPUTS}


def restore_take(layout: TopicLayout, n: int, stage: str, take_id: str, *, wait: float = 30.0,
                 pair: bool = True) -> SceneFile:
    """Make take ``take_id`` scene ``n``'s ``stage`` asset again; ``scenes.json`` points at it.

    The scene's inputs become the ones that made the take (its prompt, voice ...), so the
    next run keeps it; a pinned seed follows the take's seed. Image and motion stay a pair:
    an image brings back the motion made from it (or, when none is kept, the scene has no
    motion until the next run makes it), a motion take brings back the image it was made from
    (``pair=False``: the take alone, for putting back what a failed re-roll replaced).
    """
    if stage not in STAGE_INPUTS:
        raise ConfigError(f"unknown stage {stage!r}; choose from {', '.join(STAGE_INPUTS)}")
    with topic_lock(layout, wait=wait):
        sf = load_topic(layout)
        scene = sf.scenes[_scene_index(sf, n)]
        store = TakeStore(StageCache(layout))
        take = store.get(stage, n, take_id)
        if stage == "motion" and pair:
            _image_for_motion(store, scene, n, take)
        _apply_take(layout, scene, n, store.restore(stage, n, take_id))
        if stage == "image" and pair:
            _motion_for_image(store, scene, n)
        write_scenes_json(sf, layout)
    return sf


def _apply_take(layout: TopicLayout, scene: Scene, n: int, take: Take) -> None:
    """The scene's inputs and fields as the (now current) take has them."""
    for name in STAGE_INPUTS[take.stage]:
        value = take.inputs.get(name)
        if value is None and name != "script":
            drop_fields(scene, name)
        elif value is not None:
            set_fields(scene, **{name: value})
    pin = PIN_FIELD.get(take.stage)
    if pin is not None and getattr(scene, pin) is not None:
        set_fields(scene, **{pin: take.seed})
    _set_asset_fields(layout, scene, n, take)


def _set_asset_fields(layout: TopicLayout, scene: Scene, n: int, take: Take) -> None:
    """The scene's asset fields (paths, duration, recorded seed ...) as ``take`` has them."""
    drop_fields(scene, *STAGE_FIELDS[take.stage])
    hit = CacheHit([layout.root / f for f in take.files], take.fields)
    set_fields(scene, **STEPS[take.stage].scene_fields(layout, n, hit.files, hit.fields))


def show_current(layout: TopicLayout, scene: Scene, n: int, stage: str) -> None:
    """Point scene ``n``'s asset fields at its current ``stage`` asset, when it has one (after a run that
    stopped before it made a new one: the fields it dropped come back)."""
    take = TakeStore(StageCache(layout)).current(stage, n)
    if take is not None:
        _set_asset_fields(layout, scene, n, take)


def _digest_or_none(path: Path) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


def _motion_for_image(store: TakeStore, scene: Scene, n: int) -> None:
    """After an image came back: the motion made from it comes back too, else the scene's motion is put
    aside (kept as a take) so that no motion of another image is shown or reused."""
    digest = _digest_or_none(store.layout.image_path(n))
    takes = store.list("motion", n)
    current = next((t for t in takes if t.current), None)
    if current is not None and current.made_from == digest:
        _set_asset_fields(store.layout, scene, n, current)  # shown, even if a stopped run dropped its fields
        return
    for take in reversed(takes):
        if take.made_from == digest and not take.current:
            with contextlib.suppress(AssetMissingError):  # a damaged take is not brought back
                _apply_take(store.layout, scene, n, store.restore("motion", n, take.id))
                return
    pinned = scene.motion_seed if scene.motion_frames_path is None else None
    if current is not None:
        pinned = current.inputs.get("motion_seed")
        store.keep("motion", n)
        store.cache.invalidate("motion", n)
    drop_fields(scene, *STAGE_FIELDS["motion"])
    if pinned is None or scene.motion_seed != pinned:
        drop_fields(scene, "motion_seed")  # the put-aside motion's record, not a pin for the next one


def _image_for_motion(store: TakeStore, scene: Scene, n: int, take: Take) -> None:
    """Before a motion take comes back: the image it was made from, when that is not the current one."""
    if take.made_from is None or take.made_from == _digest_or_none(store.layout.image_path(n)):
        return  # made before takes recorded their image, or made from the image there now
    image = next((t for t in store.list("image", n) if t.sha256[:1] == [take.made_from]), None)
    if image is None:
        raise ConfigError(f"scene {n}: motion take {take.id} was made from an image that is no longer kept; "
                          "it cannot be restored")
    _apply_take(store.layout, scene, n, store.restore("image", n, image.id))


def topic_dir_layout(folder: Path) -> TopicLayout:
    """The layout of an existing topic folder (``<out>/<slug>``)."""
    folder = Path(folder).absolute()  # paths written to scenes.json hold from any working folder
    if not (folder / "scenes.json").is_file():
        raise ConfigError(f"{folder}: no scenes.json here; give a topic folder such as output/<topic>")
    return TopicLayout(folder.parent, folder.name)
