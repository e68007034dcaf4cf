"""A job's ``options``: the run settings a caller may choose per job, checked into :class:`Settings`.

Only the choices that shape a topic's assets are open to callers (voice, workflow,
stages, seeds ...). Where files go, which servers run the jobs, secrets and time
limits stay the operator's: a request can never point the service at another
folder, server or file. Workflows are chosen by bundled name for the same reason
(a path would let a caller make the service read any file it can); the operator's
own workflow file is the default when a job names none.

Every problem is one line naming the option (``options.seed: ...``), raised as a
:class:`ConfigError` whose lines are the 422 answer's ``problems``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .. import ConfigError, Settings
from ..pipeline import bundled_kind, json_problem, list_bundled, shown, unicode_problem
from .targets import check_syntax

__all__ = ["OPTIONS", "job_settings", "check_options", "webhook_url"]

#: Option name -> the setting it sets.
OPTIONS: dict[str, str] = {
    "stages": "stages",
    "motion": "motion_enabled",
    "offline": "offline",
    "tts": "tts",
    "voice": "voice",
    "rate": "rate",
    "workflow": "workflow",
    "prompt_node": "prompt_node",
    "negative": "negative",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "motion_workflow": "motion_workflow",
    "motion_prompt_node": "motion_prompt_node",
    "motion_image_node": "motion_image_node",
    "motion_length": "motion_length",
    "motion_fps": "motion_fps",
    "motion_seed": "motion_seed",
    "sequential": "sequential",
}
_SERVICE_ONLY = ("webhook_url",)
_FIELD_TO_OPTION = {field: name for name, field in OPTIONS.items()}


def _workflow_problem(name: str, value: Any, kind: str) -> str | None:
    if not isinstance(value, str) or bundled_kind(value) != kind:
        return (f"options.{name}: {value!r} is not a bundled {kind} workflow (choose from "
                f"{', '.join(list_bundled(kind))}); a workflow file is chosen by the operator")
    return None


def webhook_url(options: Mapping[str, Any]) -> str | None:
    """The job's webhook URL (checked by :func:`check_options`)."""
    value = options.get("webhook_url")
    return value if isinstance(value, str) else None


def _sort(options: Any) -> tuple[dict[str, Any], list[str]]:
    """The options that may be used, and one line per one that may not."""
    if options is None:
        return {}, []
    if not isinstance(options, Mapping):
        return {}, [f"options must be an object, got {type(options).__name__}"]
    good, problems = {}, []
    for name, value in options.items():
        problem = None
        text_problem = json_problem(value) or unicode_problem(str(name))
        if text_problem:  # never saved: a lone surrogate would fail the write of the topic's state
            problem = f"options.{shown(str(name))}: {text_problem}"
        elif name not in OPTIONS and name not in _SERVICE_ONLY:
            problem = f"options.{name}: unknown option; choose from {', '.join([*OPTIONS, *_SERVICE_ONLY])}"
        elif name in ("workflow", "motion_workflow") and value is not None:
            problem = _workflow_problem(name, value, "image" if name == "workflow" else "motion")
        elif name == "webhook_url" and value is not None and (bad := check_syntax(value)):
            problem = f"options.webhook_url: {bad}"
        if problem:
            problems.append(problem)
        else:
            good[name] = value
    return good, problems


def check_options(options: Any) -> dict[str, Any]:
    """The options as a plain dict; ConfigError listing unknown names and malformed values."""
    good, problems = _sort(options)
    if problems:
        raise ConfigError("\n".join(problems))
    return good


def job_settings(base: Settings, options: Mapping[str, Any]) -> Settings:
    """``base`` with the job's options applied, validated like any settings; every problem at once.

    Asking for the motion stage asks for motion, as on the command line.
    """
    good, problems = _sort(options)
    update = {OPTIONS[k]: v for k, v in good.items() if k in OPTIONS and v is not None}
    stages = update.get("stages")
    names = stages.split(",") if isinstance(stages, str) else stages if isinstance(stages, list) else []
    if "motion" in [str(s).strip() for s in names] and "motion_enabled" not in update:
        update["motion_enabled"] = True
    settings = base
    try:
        settings = Settings.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            problems.append(f"options.{_FIELD_TO_OPTION.get(field, field)}: {err['msg'].removeprefix('Value error, ')}")
    if problems:
        raise ConfigError("\n".join(problems))
    return settings
