"""The engine: plan a run, then run every scene's chain (narration ∥ image → motion).

* :mod:`.plan` - :func:`plan_run`: every check that can be made before any work.
* :mod:`.engine` - :class:`Engine`: shared resources and backends; one topic's run.
* :mod:`.schedule` - the one scheduler (per-scene chains; the original order as barriers).
* :mod:`.steps` - one scene's work in one stage: cache, retry, record.
* :mod:`.context` - what the steps of one topic run share.
* :mod:`.api` - ``generate_assets``, ``agenerate_assets``, ``run_many``.
* :mod:`.nodes` - the original system's node functions (``audio_generator`` ...).
* :mod:`.workspace` - :class:`Topic`: one topic's folder and every rule about changing it (its
  ``scenes.json``, lock, takes, pins, edits, re-rolls and their undoing); every face goes through it.
"""

from typing import Any

from ..config import MAX_SEED, redact_url
from ..fsutil import atomic_write_bytes
from ..input_checks import json_problem, shown, unicode_problem
from ..layout import CONTACT_SHEET_NAME, COVER_NAME, FINAL_NAME, PREVIEW_NAME, TopicLayout, slugify, valid_slug
from ..retry import is_retryable, retry_async
from ..scenes import decode_scene_json, parse_state
from ..takes import Take
from ..workflows import BUNDLED_KINDS, bundled_kind, list_bundled
from .api import TopicResult, agenerate_assets, generate_assets, run_many
from .engine import Engine
from .plan import DEFAULT_TOPIC, RunPlan, aplan_run, plan_run
from .state import write_scenes_json
from .workspace import LOCK_WAIT, Reroll, Topic, without_outputs

_LAZY = {"make_preview": "..preview", "make_contact_sheet": "..preview", "cjk_font_path": "..fonts",
         "compose_topic": "..compose", "open_bounded": "..media", "NotAnImage": "..media",
         "TooManyPixels": "..media"}


def __getattr__(name: str) -> Any:
    """The preview's functions and the image opener, imported when first asked for (numpy, Pillow and
    ffmpeg are heavy)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # what the faces over the engine (the command line, the service, the agent tools) use besides it:
    # reading scene files, naming topic folders, checking text, atomic writes, bundled workflows, retries,
    # previews
    "BUNDLED_KINDS", "CONTACT_SHEET_NAME", "COVER_NAME", "FINAL_NAME", "NotAnImage", "PREVIEW_NAME",
    "TooManyPixels", "open_bounded", "MAX_SEED", "Take", "compose_topic", "TopicLayout", "atomic_write_bytes", "bundled_kind", "cjk_font_path",
    "decode_scene_json", "is_retryable", "json_problem", "list_bundled", "make_contact_sheet", "make_preview",
    "parse_state", "redact_url", "retry_async", "shown", "slugify", "unicode_problem", "valid_slug",
    # the engine and the topic workspace
    "DEFAULT_TOPIC",
    "Engine",
    "LOCK_WAIT",
    "Reroll",
    "Topic",
    "RunPlan",
    "TopicResult",
    "agenerate_assets",
    "aplan_run",
    "generate_assets",
    "plan_run",
    "run_many",
    "without_outputs",
    "write_scenes_json",
]
