"""The original system's pipeline as a LangGraph graph (optional extra: ``pip install 'sceneforge[graph]'``).

``START → audio_generator → visual_generator → motion_generator → END``, over a
state with ``topic`` and ``scenes``; usable on its own or as a subgraph.

Retries already happen *inside* each node, per scene, with the original
system's schedules. Adding a LangGraph ``RetryPolicy`` on top would multiply attempts
(3 node attempts x 3 scene attempts). If you want one, pass
``retry_on=sceneforge.integrations.langgraph.retry_on``: it retries only failures that did not
already go through a per-scene retry loop (for example a server that was
unreachable at the stage's health check), and never bad input::

    graph = build_graph(settings, retry_policy=RetryPolicy(max_attempts=2, retry_on=retry_on))
"""

from __future__ import annotations

from typing import Any, TypedDict

from ..config import Settings, load_settings
from ..events import EventSink
from ..pipeline.nodes import (
    aaudio_generator,
    amotion_generator,
    audio_generator,
    avisual_generator,
    motion_generator,
    visual_generator,
)
from ..retry import exhausted, is_retryable

__all__ = ["SceneState", "build_graph", "retry_on"]


class SceneState(TypedDict, total=False):
    """The graph's state: the original system's ``topic`` and ``scenes`` (a list of scene dicts)."""

    topic: str
    scenes: list[dict[str, Any]]


def retry_on(exc: Exception) -> bool:
    """For a node-level LangGraph RetryPolicy: retry only what per-scene retry did not already retry."""
    return is_retryable(exc) and not exhausted(exc)


def build_graph(settings: Settings | None = None, *, on_event: EventSink | None = None, retry_policy: Any = None) -> Any:
    """A compiled ``StateGraph`` with the original system's three nodes, in its order."""
    try:
        from langchain_core.runnables import RunnableLambda
        from langgraph.graph import END, START, StateGraph
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the LangGraph graph needs the 'graph' extra: pip install 'sceneforge[graph]'") from exc

    settings = settings or load_settings()

    def node(name: str, sync_fn: Any, async_fn: Any) -> Any:
        def run(state: SceneState) -> dict[str, Any]:
            out = sync_fn(state, settings, on_event)
            return {"topic": out.get("topic", state.get("topic")), "scenes": out["scenes"]}

        async def arun(state: SceneState) -> dict[str, Any]:
            out = await async_fn(state, settings, on_event)
            return {"topic": out.get("topic", state.get("topic")), "scenes": out["scenes"]}

        return RunnableLambda(run, afunc=arun, name=name)

    g = StateGraph(SceneState)
    kw = {"retry_policy": retry_policy} if retry_policy is not None else {}
    g.add_node("audio_generator", node("audio_generator", audio_generator, aaudio_generator), **kw)
    g.add_node("visual_generator", node("visual_generator", visual_generator, avisual_generator), **kw)
    g.add_node("motion_generator", node("motion_generator", motion_generator, amotion_generator), **kw)
    g.add_edge(START, "audio_generator")
    g.add_edge("audio_generator", "visual_generator")
    g.add_edge("visual_generator", "motion_generator")
    g.add_edge("motion_generator", END)
    return g.compile()
