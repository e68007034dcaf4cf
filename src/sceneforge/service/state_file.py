"""A topic's ``scenes.json`` as the service reads it: one reader for the topic's answer, its edits and the
records found at startup, each version of the file parsed once (a few topics are kept)."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

from .. import AssetMissingError, ConfigError
from ..pipeline import TopicLayout

__all__ = ["read_state", "forget_state"]

_STATES_KEPT = 16  # parsed scenes.json files kept
_states: OrderedDict[str, tuple[int, int, dict[str, Any]]] = OrderedDict()


def read_state(layout: TopicLayout) -> tuple[dict[str, Any], os.stat_result]:
    """The topic's ``scenes.json`` (parsed once per version of the file: a few topics are kept), with the
    ``os.stat`` taken before it was read: what was read is that version of the file or a newer one, so a
    cache keyed by that stat is never stale past the next change."""
    path = layout.scenes_json
    key = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AssetMissingError(f"topic {layout.slug!r} has no scenes.json") from None
    cached = _states.get(key)
    if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
        _states.move_to_end(key)
        return cached[2], st
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("scenes"), list):
        raise ConfigError(f"{path} is not a sceneforge state")
    _states[key] = (st.st_mtime_ns, st.st_size, state)
    while len(_states) > _STATES_KEPT:
        _states.popitem(last=False)
    return state, st


def forget_state(layout: TopicLayout) -> None:
    """The topic went away: its parsed state is not kept."""
    _states.pop(str(layout.scenes_json), None)
