"""Each scene's state, worked out from its topic's events as they happen, so a client reads it from
``GET /api/topics/{slug}`` and follows the stream from that answer's ``last_event_id`` on.

A scene's state is ``{"phase", "stage", "note", "stages"}``: ``phase`` is ``done``, ``queued``,
``making``, ``ready`` (its stage is made, the job goes on), ``failed``, ``cancelled`` or
``interrupted``; ``stages`` maps each stage the job touched to ``queued``, ``making``,
``done`` or ``failed``. A failed scene also carries ``failure: {stage, kind, message,
retryable}``: ``kind`` is the error's class (``GenerationError``, ``ServerUnavailableError``
...), ``upstream`` for motion whose image failed, ``job`` for a job that failed without
naming the scene. No client parses an error's words to learn any of this.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SceneStates"]

_WAITING = frozenset({"queued", "making", "ready"})
_SCENE_KINDS = frozenset({"scene_started", "job_progress", "scene_retried", "scene_done", "scene_cached", "scene_failed"})


def _fresh(phase: str) -> dict[str, Any]:
    return {"phase": phase, "stage": None, "note": "", "stages": {}, "failure": None, "active": {}}


class SceneStates:
    """The states of one topic's scenes (numbered from 1): one shared state for the scenes no event named
    since the last job began, and the few an event did (a 100 000-scene topic costs what its events cost)."""

    def __init__(self, count: int, busy: bool = False) -> None:
        self.count = count
        self.default = "queued" if busy else "done"
        self.default_failure: dict[str, Any] | None = None  # the job's, for a job that failed naming no scene
        self.changed: dict[int, dict[str, Any]] = {}
        self.version = 0  # changes whenever a state may have (a view built for one version can be kept)

    @classmethod
    def from_json(cls, raw: Any, count: int, busy: bool) -> SceneStates:
        """As kept in ``status.json`` (fresh when it kept none, or for another number of scenes)."""
        made = cls(count, busy)
        if isinstance(raw, dict) and raw.get("count") == count and isinstance(raw.get("scenes"), dict):
            made.default = str(raw.get("default") or made.default)
            failure = raw.get("default_failure")
            made.default_failure = failure if isinstance(failure, dict) else None
            made.changed = {int(n): {**_fresh("done"), **s, "active": {}} for n, s in raw["scenes"].items()
                            if str(n).isdigit() and 1 <= int(n) <= count and isinstance(s, dict)}
        return made

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "default": self.default, "default_failure": self.default_failure,
                "scenes": {str(n): self.view(n) for n in sorted(self.changed)}}

    def _shared(self) -> dict[str, Any]:
        """The state of a scene no event named since the job began."""
        state = _fresh(self.default)
        if self.default_failure is not None:
            state.update(note=self.default_failure["message"], failure=dict(self.default_failure))
        return state

    def _get(self, n: int) -> dict[str, Any]:
        state = self.changed.get(n)
        if state is None:
            state = self.changed[n] = self._shared()
        return state

    def view(self, n: int) -> dict[str, Any]:
        """Scene ``n``'s state for a client."""
        state = self.changed.get(n) or self._shared()
        out = {k: state[k] for k in ("phase", "stage", "note", "stages")}
        if state["failure"] is not None:
            out["failure"] = state["failure"]
        return out

    def shared_view(self) -> dict[str, Any]:
        """The state of every scene no event named since the job began."""
        return self.view(0)

    def resize(self, count: int, busy: bool) -> None:
        self.version += 1
        self.count = count
        self.changed = {n: s for n, s in self.changed.items() if n <= count}

    # ------------------------------------------------------------------ events
    def apply(self, event: dict[str, Any]) -> None:
        """Take one event of the topic (the same dicts the stream sends); :attr:`version` moves only when a
        state may have changed (an event naming no scene keeps views built for the states as they are)."""
        data = event.get("data") or {}
        kind = event.get("kind")
        if kind == "status":
            self._status(data)
            return
        n = event.get("scene")
        if kind not in _SCENE_KINDS or not isinstance(n, int) or not 1 <= n <= self.count:
            return
        state, stage = self._get(n), event.get("stage")
        if state["phase"] == "failed" and kind != "scene_failed":
            return  # its reason stays until the next job
        self.version += 1
        if kind in ("scene_started", "job_progress", "scene_retried"):
            note = {"job_progress": _percent(data), "scene_retried": f"(trying again: {data.get('reason') or 'it failed'})"}
            self._making(state, stage, note.get(str(kind), ""))
        elif kind in ("scene_done", "scene_cached"):
            self._made(state, stage)
        elif kind == "scene_failed":
            self._failed(state, stage, data)

    def _making(self, state: dict[str, Any], stage: Any, note: str) -> None:
        state["active"][stage] = note
        state["stages"][stage] = "making"
        state.update(phase="making", stage=stage, note=note)

    def _made(self, state: dict[str, Any], stage: Any) -> None:
        state["active"].pop(stage, None)
        state["stages"][stage] = "done"
        if state["active"]:
            other, note = next(iter(state["active"].items()))
            state.update(phase="making", stage=other, note=note)
        else:
            state.update(phase="ready", stage=stage, note="")

    @staticmethod
    def _failed(state: dict[str, Any], stage: Any, data: dict[str, Any]) -> None:
        raw = data.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        message = str(data.get("reason") or error.get("message") or "no reason given")
        kind = str(error.get("type") or ("upstream" if stage == "motion" else "error"))
        state["stages"][stage] = "failed"
        state.update(phase="failed", stage=stage, note=message, active={},
                     failure={"stage": stage, "kind": kind, "message": message,
                              "retryable": bool(error.get("retryable", False))})

    def _status(self, data: dict[str, Any]) -> None:
        status, job = data.get("status"), data.get("job") or {}
        if status == "running" or (status == "queued" and job.get("kind") == "preview"):
            return  # no scene's state changes
        self.version += 1
        if status == "queued":
            if job.get("kind") == "regenerate" and isinstance(job.get("scene"), int) and 1 <= job["scene"] <= self.count:
                self.changed[job["scene"]] = {**_fresh("queued"), "stage": job.get("stage")}
            elif job.get("kind") != "preview":
                self.default, self.default_failure, self.changed = "queued", None, {}
        elif status != "running":
            self._settle(str(status), data.get("error"))

    def _settle(self, status: str, error: Any) -> None:
        """The job ended: every scene still waiting is done, cancelled, interrupted or failed with the job."""
        any_failed = any(s["phase"] == "failed" for s in self.changed.values())
        ended = self._ended(self.default, status, error, any_failed)
        self.default, self.default_failure = ended["phase"], ended["failure"]
        for n, state in self.changed.items():
            if state["phase"] in _WAITING:
                self.changed[n] = {**self._ended(state["phase"], status, error, any_failed), "stages": state["stages"]}

    @staticmethod
    def _ended(phase: str, status: str, error: Any, any_failed: bool) -> dict[str, Any]:
        if phase not in _WAITING:
            return _fresh(phase)
        if status == "failed" and not any_failed and phase != "ready":
            message = str(error or "the job failed")
            return {**_fresh("failed"), "note": message,
                    "failure": {"stage": None, "kind": "job", "message": message, "retryable": False}}
        if status in ("cancelled", "interrupted") and phase != "ready":
            return _fresh(status)
        return _fresh("done")


def _percent(data: dict[str, Any]) -> str:
    try:
        value, top = float(data.get("value")), float(data.get("max"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return f"{min(100, round(100 * value / top))}%" if top > 0 and value >= 0 else ""
