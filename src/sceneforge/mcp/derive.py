"""The tools' view of a topic, derived from the service's topic view (each scene's ``state`` and ``failure``).

Per scene and stage a ``state`` (:data:`.shapes.StageState`), its seed, duration and
GPU seconds (``gpu_seconds`` in ``scenes.json``, as ``{"image": 3.1}`` or
``image_gpu_seconds``, passed through when present), and the scene's ``failure``: the
one the service's view carries in the scene's ``state`` (its
:class:`~sceneforge.service.scene_states.SceneStates` worked it out from the events),
taken as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import STAGES
from ..pipeline.context import STAGE_FIELDS
from .shapes import Failure, SceneInfo, StageInfo, TopicInfo

__all__ = ["scene_info", "topic_info"]

_SEED_FIELDS = {"image": "image_seed", "motion": "motion_seed"}
_ASSET_KEYS = {"audio": ("audio",), "image": ("image",), "motion": ("motion_frames", "motion_video")}
_SHOWN = {"n", "urls", "script", "image_prompt", "motion_prompt", "gpu_seconds", "failure",
          *(name for names in STAGE_FIELDS.values() for name in names), *_SEED_FIELDS.values()}
#: Maps a ``/files`` URL to what the caller is given for it (a path over stdio; the URL over HTTP).
FileName = Callable[[str], str | None]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _gpu_seconds(raw: dict[str, Any], stage: str) -> float | None:
    per_stage = raw.get("gpu_seconds")
    value = per_stage.get(stage) if isinstance(per_stage, dict) else raw.get(f"{stage}_gpu_seconds")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _duration(raw: dict[str, Any], stage: str) -> float | None:
    if stage == "audio" and isinstance(raw.get("audio_duration"), (int, float)):
        return float(raw["audio_duration"])
    frames, fps = raw.get("motion_frames_path"), raw.get("motion_fps")
    if stage == "motion" and isinstance(frames, list) and frames and isinstance(fps, (int, float)) and fps > 0:
        return round(len(frames) / float(fps), 3)
    return None


def _files(urls: dict[str, Any], name: FileName) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in urls.items():
        if isinstance(value, list):
            named = [n for n in (name(v) for v in value if isinstance(v, str)) if n is not None]
            if named:
                out[key] = named
        elif isinstance(value, str) and (one := name(value)) is not None:
            out[key] = one
    return out


def scene_info(raw: dict[str, Any], *, stages: set[str], status: str, name: FileName) -> SceneInfo:
    """One scene of the service's topic view as the tools show it."""
    n = int(raw["n"])
    urls = _obj(raw.get("urls"))
    told = _obj(raw.get("state"))  # the service's own account of the scene (issue #18.3)
    own = raw.get("failure") or told.get("failure")
    failure = Failure.model_validate({**own, "stage": own.get("stage") or "job"}) if isinstance(own, dict) else None
    said = _obj(told.get("stages"))
    info: dict[str, StageInfo] = {}
    for stage in STAGES:
        if any(urls.get(key) for key in _ASSET_KEYS[stage]):
            state = "done"
        elif said.get(stage) == "failed" or (failure is not None and failure.stage == stage):
            state = "failed"
        elif stage not in stages:
            state = "off"
        elif status in ("queued", "running"):
            state = status
        else:
            state = "missing"
        seed = raw.get(_SEED_FIELDS.get(stage, ""))
        info[stage] = StageInfo(state=state, seed=seed if isinstance(seed, int) else None,
                                duration_s=_duration(raw, stage), gpu_seconds=_gpu_seconds(raw, stage))
    text = {k: raw[k] if isinstance(raw.get(k), str) else None for k in ("script", "image_prompt", "motion_prompt")}
    return SceneInfo(n=n, **text, stages=info, failure=failure, files=_files(urls, name),
                     fields={k: v for k, v in raw.items() if k not in _SHOWN})


def topic_info(view: dict[str, Any], *, stages: set[str], name: FileName) -> TopicInfo:
    """The service's topic view (``GET /api/topics/{slug}``) as the tools show it."""
    scenes = [scene_info(s, stages=stages, status=str(view.get("status")), name=name)
              for s in view.get("scenes") or [] if isinstance(s, dict)]
    return TopicInfo(slug=view["slug"], topic=view["topic"], status=view["status"], updated_at=view["updated_at"],
                     created_at=view.get("created_at") or "", progress=view["progress"], error=view.get("error"),
                     job=view.get("job") or {}, options=view.get("options") or {},
                     previews=_files(_obj(view.get("preview_urls")), name), scenes=scenes)
