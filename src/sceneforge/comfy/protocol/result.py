"""The outcome of one ComfyUI job, as read from ``/history/<prompt_id>``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobResult", "dict_of", "execution_seconds"]


def dict_of(value: Any) -> dict[str, Any]:
    """``value`` when the server sent an object there, else an empty one (never trust the shape)."""
    return value if isinstance(value, dict) else {}


def execution_seconds(entry: dict[str, Any]) -> float | None:
    """GPU seconds of a history entry: its ``execution_start`` to its ``execution_success`` timestamps
    (milliseconds, in ``status.messages``); None when either is missing or they disagree."""
    stamps: dict[str, float] = {}
    messages = dict_of(entry.get("status")).get("messages")
    for item in messages if isinstance(messages, list) else []:
        if isinstance(item, list) and len(item) == 2 and item[0] in ("execution_start", "execution_success"):
            ts = dict_of(item[1]).get("timestamp")
            if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                stamps[item[0]] = float(ts)
    if len(stamps) < 2 or stamps["execution_success"] < stamps["execution_start"]:
        return None
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000.0


@dataclass
class JobResult:
    """A finished job: its ``prompt_id``, the server it ran on and the history ``outputs``.

    ``outputs`` maps node id -> the node's ui dict, e.g.
    ``{"9": {"images": [{"filename": "x_00001_.png", "subfolder": "", "type": "output"}]}}``.
    Video savers report their files under ``images`` too, with ``"animated": [true]``.
    """

    prompt_id: str
    outputs: dict[str, dict[str, Any]]
    server: str = ""  # redacted URL, safe to print
    cached_nodes: list[str] = field(default_factory=list)
    number: float | None = None
    #: Seconds the job held a GPU (a server's execution start to its end; an endpoint's executionTime).
    gpu_seconds: float | None = None
    #: Seconds it waited for a worker before that (an endpoint's delayTime; None on a server).
    queue_seconds: float | None = None

    def images(self, node_id: str | None = None) -> list[dict[str, Any]]:
        """File refs (``filename``, ``subfolder``, ``type``) in output order.

        Nodes come in history order, files in the order the node listed them. Each
        ref is a copy with ``"node"`` added and ``"animated": True`` for video outputs,
        so a caller can tell a frame from a video without looking back at the node.
        """
        refs: list[dict[str, Any]] = []
        for nid, ui in self.outputs.items():
            if node_id is not None and str(nid) != str(node_id):
                continue
            if not isinstance(ui, dict):
                continue
            animated = any(bool(a) for a in (ui.get("animated") or []))
            for item in ui.get("images") or []:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                ref = dict(item)
                ref["node"] = str(nid)
                if animated:
                    ref["animated"] = True
                refs.append(ref)
        return refs

    def still_images(self, node_id: str | None = None) -> list[dict[str, Any]]:
        """:meth:`images` without video outputs, ``output`` files before ``temp`` previews."""
        stills = [r for r in self.images(node_id) if not r.get("animated")]
        return sorted(stills, key=lambda r: r.get("type", "output") != "output")
