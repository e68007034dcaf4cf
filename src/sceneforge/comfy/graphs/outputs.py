"""Which of a graph's outputs a RunPod worker-comfyui can give back.

worker-comfyui (5.x ``handler.py``) returns only what ComfyUI lists under an output node's
``images`` key, and not ``temp`` files: stills (``SaveImage``) and, since ComfyUI 0.3x, the files
of the core video savers (``SaveVideo``, ``SaveWEBM``, ``SaveAnimatedWEBP``, ``SaveAnimatedPNG``),
marked ``animated``. Anything listed under another key never comes back: VideoHelperSuite's
``VHS_VideoCombine`` lists its video under ``gifs``. A graph whose only outputs are of that kind
would run, cost GPU time and return nothing, so it is refused before any job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RETURNED", "NOT_RETURNED", "unreturnable_outputs"]

#: Output nodes whose files worker-comfyui returns (listed under ``images``).
RETURNED = frozenset({"SaveImage", "SaveVideo", "SaveWEBM", "SaveAnimatedWEBP", "SaveAnimatedPNG"})
#: Output nodes whose files it does not return, with where ComfyUI lists them.
NOT_RETURNED = {
    "VHS_VideoCombine": "under gifs",
    "PreviewImage": "as temp previews",
    "SaveAudio": "under audio",
    "SaveAudioMP3": "under audio",
    "SaveGLB": "under 3d",
}


def unreturnable_outputs(graph: Mapping[str, Any], endpoint: str) -> list[str]:
    """One line naming the outputs ``endpoint`` cannot return, when no output of ``graph`` can come back."""
    classes = {str(node.get("class_type")): nid for nid, node in graph.items() if isinstance(node, Mapping)}
    if any(c in RETURNED for c in classes):
        return []
    lost = [f"node {nid} {c} (its files are listed {NOT_RETURNED[c]})" for c, nid in classes.items() if c in NOT_RETURNED]
    if not lost:
        return []
    return [f"{endpoint} runs worker-comfyui, which returns only files listed under images: "
            f"{'; '.join(lost)} would never come back; use a workflow that saves its frames (SaveImage) "
            "or uses a core video node (CreateVideo + SaveVideo)"]
