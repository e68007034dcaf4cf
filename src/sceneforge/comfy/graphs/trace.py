"""Where a prompt goes in a ComfyUI graph: follow the sampler's conditioning back to its text encoder.

From every sampler (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced via its guider) the
walk follows links back through conditioning pass-through nodes to the node with the text. Wan's
``WanImageToVideo`` takes ``positive``/``negative`` and outputs them again as outputs 0/1, so the walk
follows the output index. :class:`GraphQueries` is the part of :class:`~sceneforge.comfy.graphs.workflow.Workflow`
that answers these questions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import WorkflowError
from .validate import is_link

__all__ = ["GraphQueries", "Injection", "node_title"]

# sampler class -> (positive input, negative input)
_SAMPLERS = {
    "KSampler": ("positive", "negative"),
    "KSamplerAdvanced": ("positive", "negative"),
    "SamplerCustom": ("positive", "negative"),
}
# guider class (behind SamplerCustomAdvanced.guider) -> (positive input, negative input or None)
_GUIDERS: dict[str, tuple[str, str | None]] = {
    "CFGGuider": ("positive", "negative"),
    "DualCFGGuider": ("cond1", "negative"),
    "BasicGuider": ("conditioning", None),
    "PerpNegGuider": ("positive", "negative"),
    "DualModelGuider": ("positive", "negative"),
}
# text encoders whose prompt goes into more than one input, or into one not called "text"
_ENCODER_INPUTS = {
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("text_g", "text_l"),
    "CLIPTextEncodeSDXLRefiner": ("text",),
    "CLIPTextEncodeFlux": ("clip_l", "t5xxl"),
    "CLIPTextEncodeSD3": ("clip_l", "clip_g", "t5xxl"),
    "CLIPTextEncodeHiDream": ("clip_l", "clip_g", "t5xxl", "llama"),
    "CLIPTextEncodeHunyuanDiT": ("bert", "mt5xl"),
    "CLIPTextEncodeLumina2": ("user_prompt",),
    "TextEncodeQwenImageEdit": ("prompt",),
    "TextEncodeQwenImageEditPlus": ("prompt",),
    "TextEncodeZImageOmni": ("prompt",),
    "TextEncodeHunyuanVideo_ImageToVideo": ("prompt",),
}
# The conditioning coming out of these no longer depends on any text, so a walk stops there (Z-Image
# templates feed the sampler's negative with ConditioningZeroOut of the *positive* encoder).
_ZEROING = {"ConditioningZeroOut"}


@dataclass(frozen=True)
class Injection:
    """One place a value will be written: ``what`` (prompt, negative, seed, width, height, length, image,
    filename_prefix) goes into input ``input_name`` of node ``node_id``, which now holds ``value``."""

    what: str
    node_id: str
    class_type: str
    input_name: str
    title: str
    value: Any


def node_title(node: Mapping[str, Any]) -> str:
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return title if isinstance(title, str) else ""


class GraphQueries:
    """Finding nodes by title or id, and the text encoders behind a sampler's conditioning.

    Mixed into :class:`~sceneforge.comfy.graphs.workflow.Workflow`, which provides ``graph`` and ``source``.
    """

    graph: dict[str, Any]
    source: str

    def _find(self, ref: str, flag: str) -> str:
        """Node id for ``ref``: an exact ``_meta.title``, then a node id, then a case-insensitive title."""
        ref = str(ref)
        for match in (
            lambda nid, n: node_title(n) == ref,
            lambda nid, n: nid == ref,
            lambda nid, n: node_title(n).casefold() == ref.casefold(),
        ):
            hits = [nid for nid, n in self.graph.items() if match(nid, n)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise WorkflowError(
                    f"{self.source}: {len(hits)} nodes are titled {ref!r} ({self._describe(hits)}); "
                    f"pass {flag} with one node id"
                )
        titled = [f"{nid} {node_title(n)!r}" for nid, n in self.graph.items() if node_title(n)]
        raise WorkflowError(
            f"{self.source}: no node titled or numbered {ref!r} (for {flag}); nodes: "
            + (", ".join(titled) if titled else ", ".join(self.graph))
        )

    def _describe(self, ids: Any) -> str:
        return ", ".join(
            f"{nid} ({self.graph[nid]['class_type']}" + (f" {node_title(self.graph[nid])!r})" if node_title(self.graph[nid]) else ")")
            for nid in ids
        )

    def _inj(self, what: str, node_id: str, input_name: str) -> Injection:
        node = self.graph[node_id]
        return Injection(what, node_id, node["class_type"], input_name, node_title(node), node["inputs"].get(input_name))

    # ------------------------------------------------------------------ prompt detection
    def _text_inputs(self, node_id: str, prompt_input: str) -> tuple[str, ...] | None:
        node = self.graph[node_id]
        inputs, class_type = node["inputs"], node["class_type"]
        if prompt_input != "text" and prompt_input in inputs:
            return (prompt_input,)
        if class_type in _ENCODER_INPUTS:
            return _ENCODER_INPUTS[class_type]
        for name in dict.fromkeys((prompt_input, "text")):
            # any node with a string (or string-linked) "text" input counts as a text encoder
            if name in inputs and (isinstance(inputs[name], str) or is_link(inputs[name])):
                return (name,)
        return None

    def _trace(self, link: Any, prompt_input: str, seen: set[tuple[str, int]]) -> list[str]:
        """Text encoders whose conditioning reaches ``link`` (a ``[node_id, output]`` link)."""
        if not is_link(link) or link[0] not in self.graph or tuple(link) in seen:
            return []
        seen.add((link[0], link[1]))
        node_id, out = link
        node = self.graph[node_id]
        if node["class_type"] in _ZEROING:
            return []
        if self._text_inputs(node_id, prompt_input) is not None:
            return [node_id]
        inputs = node["inputs"]
        if is_link(inputs.get("positive")) and is_link(inputs.get("negative")):
            # positive/negative pass-through (WanImageToVideo, ControlNetApplyAdvanced, InstructPix2Pix...):
            # output 0 carries the positive, output 1 the negative.
            return self._trace(inputs[("positive", "negative")[out]], prompt_input, seen) if out < 2 else []
        found: list[str] = []
        for name, value in inputs.items():
            # single-channel pass-through: ConditioningCombine/SetArea/Concat, ControlNetApply, FluxGuidance...
            if is_link(value) and (name.startswith("conditioning") or name in ("positive", "cond", "cond1", "cond2")):
                found += self._trace(value, prompt_input, seen)
        return found

    def _sampler_links(self, role: int) -> Iterator[Any]:
        """Links into every sampler's positive (role 0) or negative (role 1) conditioning."""
        for node in self.graph.values():
            class_type, inputs = node["class_type"], node["inputs"]
            if class_type in _SAMPLERS:
                yield inputs.get(_SAMPLERS[class_type][role])
            elif class_type == "SamplerCustomAdvanced":
                guider_link = inputs.get("guider")
                guider = self.graph.get(guider_link[0]) if is_link(guider_link) else None
                if guider is None:
                    continue
                names = _GUIDERS.get(guider["class_type"], ("positive", "negative"))
                if names[role] is not None:
                    yield guider["inputs"].get(names[role])

    def _encoder_targets(self, what: str, node_ref: str | None, prompt_input: str, flag: str) -> list[Injection]:
        if node_ref is not None:
            node_id = self._find(node_ref, flag)
            node = self.graph[node_id]
            if prompt_input in node["inputs"]:
                names: tuple[str, ...] | None = (prompt_input,)
            elif prompt_input == "text":  # the default: the encoder's own prompt inputs (text_g/text_l ...)
                names = _ENCODER_INPUTS.get(node["class_type"])
            else:
                names = None
            if not names or any(n not in node["inputs"] for n in names):
                raise WorkflowError(
                    f"{self.source}: node {node_id} ({node['class_type']}) has no input {prompt_input!r} for the "
                    f"{what}; its inputs are {', '.join(node['inputs']) or 'none'} (set prompt_input to the one to use)"
                )
            return [self._inj(what, node_id, n) for n in names]
        role = 0 if what == "prompt" else 1
        found: list[str] = []
        for link in self._sampler_links(role):
            found += [e for e in self._trace(link, prompt_input, set()) if e not in found]
        if what == "prompt" and not found and not any(True for _ in self._sampler_links(0)):
            # no sampler we know (a custom one): fall back to the graph's only text encoder, if it has one
            found = [nid for nid in self.graph if self._text_inputs(nid, prompt_input) is not None]
            found = found if len(found) == 1 else []
        if len(found) != 1:
            fix = f"pass {flag} with the node's title or id"
            if found:
                problem = f"the {what} could go to several nodes: {self._describe(found)}; {fix}"
            elif what == "prompt":
                problem = f"no text encoder feeds a sampler's positive input; {fix}"
            else:  # e.g. a ConditioningZeroOut negative: there is no text to set
                problem = (f"no text encoder feeds the sampler's negative input (is it zeroed out?); "
                           f"leave the negative prompt unset or {fix}")
            raise WorkflowError(f"{self.source}: {problem}")
        names = self._text_inputs(found[0], prompt_input) or ()
        return [self._inj(what, found[0], n) for n in names]

    def _prompt_and_negative(
        self, kind: str, prompt_node: str | None, negative_node: str | None, prompt_input: str, want_negative: bool
    ) -> tuple[list[Injection], list[Injection]]:
        flag = "--prompt-node" if kind == "image" else "--motion-prompt-node"
        prompt = self._encoder_targets("prompt", prompt_node, prompt_input, flag)
        if not want_negative:
            return prompt, []
        negative = self._encoder_targets("negative", negative_node, prompt_input, "negative_node")
        if {i.node_id for i in prompt} & {i.node_id for i in negative}:
            raise WorkflowError(
                f"{self.source}: the positive and negative prompts share node {negative[0].node_id}; "
                "setting a negative would overwrite the prompt"
            )
        return prompt, negative
