"""The model files a graph needs that a server does not list (its loaders' combo inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .validate import MODEL_EXTENSIONS, combo_choices, input_specs, is_model_input

__all__ = ["missing_models"]


def missing_models(graph: Mapping[str, Any], object_info: Mapping[str, Any], *, known_only: bool = False) -> list[str]:
    """Model file names the graph's loader nodes use that the server's combo lists lack.

    Reads every literal combo input that names a model file (``ckpt_name``, ``unet_name``, ``clip_name``,
    ``vae_name``, ``lora_name`` ..., or any value ending in ``.safetensors``/``.ckpt``/...) and returns the
    values missing from the server's list, deduplicated, in graph order. Nodes of unknown types are
    skipped (:func:`validate_graph` reports them). ``known_only`` skips inputs whose list is empty.
    """
    missing: list[str] = []
    for node in graph.values() if isinstance(graph, Mapping) else ():
        if not isinstance(node, Mapping):
            continue
        class_type = node.get("class_type")
        spec = object_info.get(class_type) if isinstance(class_type, str) else None
        inputs = node.get("inputs")
        if not spec or not isinstance(inputs, Mapping):
            continue
        required, optional = input_specs(spec)
        for name, value in inputs.items():
            ispec = required.get(name) or optional.get(name)
            if not isinstance(value, str) or ispec is None or not is_model_input(name, value, ispec):
                continue
            choices = combo_choices(ispec) or []
            if known_only and not any(str(c).lower().endswith(MODEL_EXTENSIONS) for c in choices):
                continue  # a server that lists no model file here (VAELoader's "pixel_space" aside) says nothing
            if value not in choices and value not in missing:
                missing.append(value)
    return missing
