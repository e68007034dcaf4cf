"""POST /prompt validation of the fake ComfyUI server, in the recorded answer shapes.

Mirrors ``execution.validate_prompt`` closely enough for the cases recorded in
``comfyui/samples/errors/``: unknown or missing class_type, missing required
inputs, bad links, type mismatches, INT/FLOAT conversion and range, combo values
(model files included), LoadImage's custom check, no output node, and partial
acceptance (200 with node_errors when at least one output is valid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Validation", "validate_prompt", "is_link", "error_body", "MODEL_INPUTS", "MODEL_FOLDERS"]

#: (class, input) -> model folder, for the combo lists that depend on files on disk.
MODEL_INPUTS = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints", ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders", ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders", ("VAELoader", "vae_name"): "vae",
    ("LoraLoaderModelOnly", "lora_name"): "loras", ("LoraLoader", "lora_name"): "loras",
    ("CLIPVisionLoader", "clip_name"): "clip_vision", ("UpscaleModelLoader", "model_name"): "upscale_models",
}
#: The model folders of GET /models (the ones the fake knows).
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                  "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen",
                  "upscale_models", "latent_upscale_models", "custom_nodes", "hypernetworks", "photomaker"]


def is_link(value: Any) -> bool:
    """``["node_id", output_index]``."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def error_body(kind: str, message: str, details: str = "", extra: dict[str, Any] | None = None,
               node_errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``{"error": {...}, "node_errors": {...}}`` body of a 400 answer."""
    return {
        "error": {"type": kind, "message": message, "details": details, "extra_info": extra or {}},
        "node_errors": node_errors or {},
    }


@dataclass
class Validation:
    """Outcome: ``error`` set -> answer 400 with ``error_body``; else run ``outputs``."""

    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def _err(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _types_match(received: Any, wanted: Any) -> bool:
    if not isinstance(received, str) or not isinstance(wanted, str):
        return True
    if "*" in (received, wanted) or received.startswith("COMFY_") or wanted.startswith("COMFY_"):
        return True
    return bool(set(received.split(",")) & set(wanted.split(",")))


def _combo_options(typ: Any, opts: dict[str, Any]) -> list[Any] | None:
    if isinstance(typ, list):
        return typ
    if typ == "COMBO":
        return list(opts.get("options") or [])
    return None


def _check_number(name: str, value: Any, typ: str, cfg: list[Any], opts: dict[str, Any]) -> list[dict[str, Any]]:
    conv: Callable[[Any], Any] = int if typ == "INT" else float
    try:
        num = conv(value)
    except (TypeError, ValueError) as exc:
        return [_err("invalid_input_type", f"Failed to convert an input value to a {typ} value",
                     f"{name}, {value}, {exc}", input_name=name, input_config=cfg, received_value=value,
                     exception_message=str(exc))]
    if "min" in opts and num < opts["min"]:
        return [_err("value_smaller_than_min", f"Value {num} smaller than min of {opts['min']}", name,
                     input_name=name, input_config=cfg, received_value=value)]
    if "max" in opts and num > opts["max"]:
        return [_err("value_bigger_than_max", f"Value {num} bigger than max of {opts['max']}", name,
                     input_name=name, input_config=cfg, received_value=value)]
    return []


class _Validator:
    def __init__(self, prompt: dict[str, Any], info: dict[str, Any], file_exists: Callable[[str], bool]) -> None:
        self.prompt = prompt
        self.info = info
        self.file_exists = file_exists
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.memo: dict[str, bool] = {}

    def node(self, nid: str) -> bool:
        """Validate ``nid`` and everything upstream; True when all of it is valid."""
        if nid in self.memo:
            return self.memo[nid]
        self.memo[nid] = True  # cycles are not this fake's concern
        node = self.prompt[nid]
        spec = self.info[node["class_type"]]
        inputs = node.get("inputs") or {}
        ok = True
        errors: list[dict[str, Any]] = []
        spec_inputs = spec.get("input") or {}
        for section in ("required", "optional"):
            for name, cfg in (spec_inputs.get(section) or {}).items():
                typ = cfg[0] if cfg else None
                opts = cfg[1] if len(cfg) > 1 and isinstance(cfg[1], dict) else {}
                if isinstance(typ, str) and typ.startswith("COMFY_"):
                    continue  # dynamic combos / autogrow / matchtype are not enforced (PROTOCOL §7.16)
                if name not in inputs:
                    if section == "required":
                        errors.append(_err("required_input_missing", "Required input is missing", name,
                                           input_name=name))
                    continue
                value = inputs[name]
                if is_link(value):
                    ok &= self._link(name, value, typ, cfg, errors)
                else:
                    errors.extend(self._widget(node["class_type"], name, value, typ, cfg, opts))
        if errors:
            self.errors[nid] = errors
        self.memo[nid] = ok and not errors
        return self.memo[nid]

    def _link(self, name: str, value: list[Any], typ: Any, cfg: list[Any], errors: list[dict[str, Any]]) -> bool:
        src, idx = value
        if src not in self.prompt:
            errors.append(_err("exception_during_validation", "Exception when validating node", repr(src),
                               exception_type="KeyError", traceback=[]))
            return True
        outs = self.info[self.prompt[src]["class_type"]].get("output") or []
        if not 0 <= idx < len(outs):
            errors.append(_err("exception_during_validation", "Exception when validating node",
                               "tuple index out of range", exception_type="IndexError", traceback=[]))
            return True
        received = outs[idx]
        if not _types_match(received, typ if not isinstance(typ, list) else "COMBO"):
            errors.append(_err("return_type_mismatch", "Return type mismatch between linked nodes",
                               f"{name}, received_type({received}) mismatch input_type({typ})",
                               input_name=name, input_config=cfg, received_type=received, linked_node=value))
            return True
        return self.node(src)

    def _widget(self, cls: str, name: str, value: Any, typ: Any, cfg: list[Any],
                opts: dict[str, Any]) -> list[dict[str, Any]]:
        if cls == "LoadImage" and name == "image":
            # LoadImage has VALIDATE_INPUTS: a file check instead of the combo check.
            if not self.file_exists(str(value)):
                return [_err("custom_validation_failed", "Custom validation failed for node",
                             f"image - Invalid image file: {value}", input_name=name)]
            return []
        if typ in ("INT", "FLOAT"):
            return _check_number(name, value, typ, cfg, opts)
        options = _combo_options(typ, opts)
        if options is not None and value not in options:
            return [_err("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {options!r}",
                         input_name=name, input_config=cfg, received_value=value)]
        return []


def validate_prompt(prompt: dict[str, Any], object_info: dict[str, Any],
                    file_exists: Callable[[str], bool]) -> Validation:
    """Validate an API graph against ``object_info`` (with the server's model/input lists filled in)."""
    for nid, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return Validation(error=error_body(
                "missing_node_type",
                f"Node 'ID #{nid}' has no class_type. The workflow may be corrupted or a custom node is missing.",
                f"Node ID '#{nid}'", {"node_id": nid, "class_type": None, "node_title": None}))
        cls = node["class_type"]
        if cls not in object_info:
            title = (node.get("_meta") or {}).get("title", cls)
            return Validation(error=error_body(
                "missing_node_type", f"Node '{cls}' not found. The custom node may not be installed.",
                f"Node ID '#{nid}'", {"node_id": nid, "class_type": cls, "node_title": title}))
    outputs = [nid for nid, node in prompt.items() if object_info[node["class_type"]].get("output_node")]
    if not outputs:
        return Validation(error=error_body("prompt_no_outputs", "Prompt has no outputs"))
    v = _Validator(prompt, object_info, file_exists)
    good: list[str] = []
    failed: list[str] = []
    for out in outputs:
        (good if v.node(out) else failed).append(out)
    node_errors: dict[str, Any] = {}
    for out in failed:
        for nid in _upstream(prompt, out):
            if nid in v.errors:
                entry = node_errors.setdefault(
                    nid, {"errors": v.errors[nid], "dependent_outputs": [], "class_type": prompt[nid]["class_type"]})
                entry["dependent_outputs"].append(out)
    if good:
        return Validation(outputs=good, node_errors=node_errors)
    own = [e for out in failed for e in v.errors.get(out, [])]
    details = "\n".join(f"{e['message']}: {e['details']}" for e in own)
    return Validation(error=error_body("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                       details, node_errors=node_errors))


def _upstream(prompt: dict[str, Any], start: str) -> list[str]:
    """``start`` and every node it depends on (depth first, each once)."""
    seen: list[str] = []
    stack = [start]
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in prompt:
            continue
        seen.append(nid)
        for value in (prompt[nid].get("inputs") or {}).values():
            if is_link(value):
                stack.append(value[0])
    return seen
