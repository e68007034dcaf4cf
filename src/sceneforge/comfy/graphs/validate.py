"""Checks on workflows: the graph's shape, values sent to the server, and the graph against ``/object_info``.

For the graph against a server's ``/object_info``, two questions are kept apart on purpose:

* :func:`validate_graph` - is the graph *structurally* acceptable (node types exist, required inputs are
  there, numbers are in range, combo values are allowed, links point at real outputs)?
* :func:`~sceneforge.comfy.graphs.models.missing_models` - which model *files* does the graph name that the server does not have?

Model-file combos (``ckpt_name``, ``unet_name``, ``vae_name`` ...) are only judged by
:func:`~sceneforge.comfy.graphs.models.missing_models`, so a server without the files reports each file once, by name, instead of as a
"value not in list" problem. On the recorded server these lists are empty (``[]``) or hold only
``pixel_space``; ComfyUI rejects such graphs with ``value_not_in_list`` (PROTOCOL.md section 6, case A).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any, TypeGuard

from ...errors import ConfigError, UnsafePathError, WorkflowError

__all__ = [
    "validate_graph",
    "is_link",
    "check_api_graph",
    "check_motion_length",
    "check_server_path",
    "choose_seed",
    "check_size",
    "SIZE_STEP",
    "SEED_LIMIT",
    "MODEL_INPUT_NAMES",
    "MODEL_EXTENSIONS",
    "input_specs",
    "combo_choices",
    "is_model_input",
]

#: Random seeds are drawn below this. ComfyUI allows up to 2**64-1, but 32 bits survive every JSON
#: reader and float conversion on the way, and are plenty for picking a different image.
SEED_LIMIT = 2**32
MAX_SEED = 2**64 - 1

#: Combo inputs that name a model file in one of ComfyUI's model folders.
MODEL_INPUT_NAMES = frozenset(
    {
        "ckpt_name", "unet_name", "clip_name", "clip_name1", "clip_name2", "clip_name3", "clip_name4",
        "vae_name", "lora_name", "control_net_name", "style_model_name", "gligen_name", "model_name",
        "upscale_model_name", "hypernetwork_name", "audio_encoder_name", "photomaker_model_name",
    }
)
#: A combo value with one of these endings is taken for a model file even under an unknown input name
#: (custom loader nodes name their inputs freely).
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")

# latent/size node -> the multiple its width and height must be (from /object_info "step")
SIZE_STEP: dict[str, int] = {
    "EmptyLatentImage": 8,
    "EmptySD3LatentImage": 16,
    "EmptyFlux2LatentImage": 16,
    "EmptyHunyuanImageLatent": 32,
    "EmptyHunyuanLatentVideo": 16,
    "EmptyChromaRadianceLatentImage": 16,
    "WanImageToVideo": 16,
    "WanFirstLastFrameToVideo": 16,
    "WanFunInpaintToVideo": 16,
    "WanFunControlToVideo": 16,
    "Wan22FunControlToVideo": 16,
    "WanCameraImageToVideo": 16,
    "WanVaceToVideo": 16,
    "Wan22ImageToVideoLatent": 32,
}


def check_api_graph(data: Any, source: str) -> dict[str, Any]:
    """Return a deep copy of the API-format graph in ``data``, or raise :class:`WorkflowError` naming
    ``source`` and the node at fault (UI-format files get the "Save (API)" hint). A saved
    ``POST /prompt`` body ``{"prompt": graph, ...}`` is accepted too."""
    if isinstance(data, Mapping) and isinstance(data.get("prompt"), Mapping) and "class_type" not in data:
        data = data["prompt"]  # a saved POST /prompt body {"prompt": graph, "client_id": ...}
    if not isinstance(data, Mapping):
        raise WorkflowError(f"{source}: a workflow must be a JSON object of nodes, not {type(data).__name__}")
    if "nodes" in data and "links" in data:
        raise WorkflowError(
            f"{source} is a ComfyUI UI-format workflow (it has 'nodes' and 'links'); sceneforge needs the API "
            "format. Open it in ComfyUI and export it with \"Save (API)\" (menu Workflow -> Export (API)), "
            "then pass that file."
        )
    if not data:
        raise WorkflowError(f"{source}: the workflow has no nodes")
    for node_id, node in data.items():
        if not isinstance(node_id, str):
            raise WorkflowError(f"{source}: node id {node_id!r} must be a string")
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str) or not node["class_type"]:
            raise WorkflowError(f"{source}: node {node_id} has no class_type; is this an API-format workflow?")
        if not isinstance(node.get("inputs", {}), Mapping):
            raise WorkflowError(f"{source}: node {node_id} ({node['class_type']}): 'inputs' must be an object")
    graph = copy.deepcopy(dict(data))
    for node in graph.values():
        node.setdefault("inputs", {})
    return graph


def check_motion_length(length: int) -> int:
    """Return ``length`` if it is a valid Wan frame count, else raise :class:`ConfigError`.

    Wan2.2 encodes 4 frames per latent step plus the first frame, so it needs 4k+1 frames (81, 121 ...).
    Other values are rejected rather than rounded: the frame count decides the clip's duration, which the
    caller should choose knowingly. The message names the nearest valid values.
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise ConfigError(f"motion length must be a whole number of frames, got {length!r}")
    if length < 1:
        raise ConfigError(f"motion length must be at least 1 frame, got {length} (Wan needs 4k+1: 1, 5, 9, ... 81)")
    if (length - 1) % 4:
        lower = length - (length - 1) % 4
        raise ConfigError(
            f"motion length {length} is not 4k+1 frames, which Wan2.2 needs; use {lower} or {lower + 4}"
        )
    return length


def check_server_path(value: str, what: str) -> str:
    """Return ``value`` if it is safe to send as a server-side name (upload name, filename prefix),
    else raise :class:`UnsafePathError`: it must stay inside the server's input/output folders."""
    if not isinstance(value, str) or not value.strip():
        raise UnsafePathError(f"{what} must be a non-empty string, got {value!r}")
    parts = value.replace("\\", "/").split("/")
    if "\\" in value or "\x00" in value or value.startswith(("/", "~")) or ".." in parts or ":" in parts[0]:
        raise UnsafePathError(f"{what} {value!r} must be a relative name without '..', '\\' or a drive")
    return value


def choose_seed(seed: int | None, rng: random.Random | None) -> int:
    """``seed`` checked (0..2**64-1, what ComfyUI accepts), or a random one below :data:`SEED_LIMIT`
    drawn from ``rng`` (the ``random`` module when None)."""
    if seed is None:
        return (rng or random).randrange(SEED_LIMIT)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def check_size(what: str, value: Any, node_id: str, class_type: str) -> int:
    """Return ``value`` if it is a valid ``what`` ("width"/"height"/"length") for the node, else raise
    :class:`ConfigError` naming the nearest valid values (sizes must be a multiple of the node's step)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive whole number, got {value!r}")
    step = SIZE_STEP.get(class_type) if what != "length" else None
    if step and value % step:
        lower = value - value % step
        raise ConfigError(
            f"{what} {value} does not suit node {node_id} ({class_type}), which needs a multiple of {step}; "
            f"use {lower or step} or {lower + step}"
        )
    return value


# Widget types whose literal values ComfyUI checks itself; anything else (IMAGE, MODEL, COMFY_*_V3 ...)
# is a link type or a V3 special we do not second-guess.
_DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"


def is_link(value: Any) -> TypeGuard[list[Any]]:
    """True for an API-format link ``[source_node_id, output_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def _label(node_id: str, class_type: str) -> str:
    return f"node {node_id} ({class_type})"


def input_specs(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    inp = spec.get("input") or {}
    return dict(inp.get("required") or {}), dict(inp.get("optional") or {})


def _options(ispec: Any) -> dict[str, Any]:
    return ispec[1] if isinstance(ispec, (list, tuple)) and len(ispec) > 1 and isinstance(ispec[1], dict) else {}


def combo_choices(ispec: Any) -> list[Any] | None:
    """The allowed values of a combo input (V1 ``[[...], {...}]`` or V3 ``["COMBO", {"options": [...]}]``),
    or None when the input is not a combo."""
    if not isinstance(ispec, (list, tuple)) or not ispec:
        return None
    kind = ispec[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        opts = _options(ispec).get("options")
        return list(opts) if isinstance(opts, list) else []
    return None


def _is_upload(ispec: Any) -> bool:
    # LoadImage/LoadVideo combos list the server's input/ folder; the file is uploaded at run time, so the
    # template's placeholder name is not a problem (the server itself validates it with VALIDATE_INPUTS).
    return any(k.endswith("_upload") and v for k, v in _options(ispec).items())


def is_model_input(name: str, value: Any, ispec: Any) -> bool:
    if _is_upload(ispec) or combo_choices(ispec) is None:
        return False
    base = name.rsplit(".", 1)[-1]
    return base in MODEL_INPUT_NAMES or (isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS))


def _types(t: str) -> set[str]:
    return {p.strip() for p in t.split(",") if p.strip()}


def _check_link(
    label: str, name: str, link: list[Any], ispec: Any, graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> list[str]:
    src_id, idx = link
    src = graph.get(src_id)
    if not isinstance(src, dict):
        return [f"{label}: input {name!r} links to node {src_id}, which is not in the workflow"]
    src_class = src.get("class_type")
    src_spec = object_info.get(src_class) if isinstance(src_class, str) else None
    if not src_spec:
        return []  # the unknown source node is reported on its own
    outputs = list(src_spec.get("output") or [])
    if idx < 0 or idx >= len(outputs):
        return [
            f"{label}: input {name!r} links to output {idx} of node {src_id} ({src_class}), "
            f"which has {len(outputs)} output(s)"
        ]
    want = ispec[0] if isinstance(ispec, (list, tuple)) and ispec else None
    got = outputs[idx]
    # Only plain type names are compared; combos, "*" and V3 specials accept links from many node kinds.
    if isinstance(want, str) and isinstance(got, str) and want != "COMBO" and not want.startswith("COMFY_"):
        w, g = _types(want), _types(got)
        if "*" not in w and "*" not in g and not (w & g):
            return [
                f"{label}: input {name!r} expects {want} but node {src_id} ({src_class}) output {idx} is {got}"
            ]
    return []


def _check_literal(label: str, name: str, value: Any, ispec: Any) -> list[str]:
    if not isinstance(ispec, (list, tuple)) or not ispec:
        return []
    kind, opts = ispec[0], _options(ispec)
    if kind in ("INT", "FLOAT"):
        conv = int if kind == "INT" else float
        try:
            # ComfyUI coerces "64" and 64.0 for INT (PROTOCOL.md 4.2), so we do too.
            num = conv(float(value)) if kind == "INT" and isinstance(value, (str, float)) else conv(value)
        except (TypeError, ValueError):
            return [f"{label}: input {name!r} must be {'an' if kind == 'INT' else 'a'} {kind}, got {value!r}"]
        lo, hi = opts.get("min"), opts.get("max")
        if isinstance(lo, (int, float)) and num < lo:
            return [f"{label}: input {name!r} is {value!r}, below the minimum {lo}"]
        if isinstance(hi, (int, float)) and num > hi:
            return [f"{label}: input {name!r} is {value!r}, above the maximum {hi}"]
        return []
    choices = combo_choices(ispec)
    if choices is not None:
        if choices and not is_model_input(name, value, ispec) and not _is_upload(ispec) and value not in choices:
            shown = ", ".join(map(repr, choices[:12])) + (" ..." if len(choices) > 12 else "")
            return [f"{label}: input {name!r} is {value!r}, not one of {shown}"]
    return []


def _check_input(
    label: str,
    name: str,
    ispec: Any,
    inputs: Mapping[str, Any],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    legacy: str | None = None,
) -> list[str]:
    """Check one input that the spec defines; ``legacy`` is the undotted name a dynamic sub-input may use."""
    key = name if name in inputs else legacy if legacy is not None and legacy in inputs else None
    if key is None:
        return []
    value = inputs[key]
    if is_link(value):
        return _check_link(label, name, value, ispec, graph, object_info)
    if isinstance(ispec, (list, tuple)) and ispec and ispec[0] == _DYNAMIC_COMBO:
        return _check_dynamic(label, name, value, ispec, inputs, graph, object_info)
    return _check_literal(label, name, value, ispec)


def _check_dynamic(
    label: str,
    name: str,
    value: Any,
    ispec: Any,
    inputs: Mapping[str, Any],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
) -> list[str]:
    """V3 dynamic combos (SaveVideo ``format``): the value picks an option whose own inputs are written
    as dotted names (``format.codec``). The server does not enforce them and crashes at run time instead
    (PROTOCOL.md section 4.2), so this check is stricter than the server's."""
    options = [o for o in _options(ispec).get("options") or [] if isinstance(o, dict)]
    keys = [o.get("key") for o in options]
    if value not in keys:
        return [f"{label}: input {name!r} is {value!r}, not one of {', '.join(map(repr, keys))}"]
    chosen = options[keys.index(value)].get("inputs") or {}
    problems: list[str] = []
    for section in ("required", "optional"):
        for sub, sub_spec in (chosen.get(section) or {}).items():
            full = f"{name}.{sub}"
            present = full in inputs or sub in inputs  # the legacy undotted name also works
            if section == "required" and not present:
                problems.append(f"{label}: required input {full!r} is missing (needed by {name}={value!r})")
            elif present:
                problems += _check_input(label, full, sub_spec, inputs, graph, object_info, legacy=sub)
    return problems


def validate_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[str]:
    """Check an API-format graph against ``/object_info`` specs, as far as that can be done offline.

    Returns one line per problem, each naming the node id and class: unknown node types, missing required
    inputs, INT/FLOAT values out of their min/max, combo values not in a non-empty list, links to missing
    nodes or to an output index the source does not have, link type mismatches, and a graph without any
    output node. An empty list means the server should accept the graph, apart from model files (see
    :func:`~sceneforge.comfy.graphs.models.missing_models`) and the uploaded input image, which are deliberately not judged here.
    """
    if not isinstance(graph, Mapping) or not graph:
        return ["the workflow has no nodes"]
    problems: list[str] = []
    has_output = unjudged = False
    for node_id, node in graph.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            problems.append(f"node {node_id}: no class_type")
            unjudged = True
            continue
        class_type = node["class_type"]
        label = _label(str(node_id), class_type)
        spec = object_info.get(class_type)
        if not spec:
            problems.append(
                f"{label}: unknown node type {class_type!r}; the server does not have it (custom node not installed?)"
            )
            unjudged = True  # it may be the output node, so "no output node" would be a guess
            continue
        has_output = has_output or bool(spec.get("output_node"))
        inputs = node.get("inputs")
        if not isinstance(inputs, Mapping):
            problems.append(f"{label}: 'inputs' must be an object")
            continue
        required, optional = input_specs(spec)
        for name, ispec in required.items():
            # V3 autogrow inputs arrive as dotted names ("values.a"), so any "name.*" counts as present.
            if name not in inputs and not any(k.startswith(name + ".") for k in inputs):
                problems.append(f"{label}: required input {name!r} is missing")
                continue
            problems += _check_input(label, name, ispec, inputs, graph, object_info)
        for name, ispec in optional.items():
            problems += _check_input(label, name, ispec, inputs, graph, object_info)
        for name, value in inputs.items():
            # Links on inputs the spec does not list (converted widgets, dotted sub-inputs) still must
            # point at a real node.
            if name not in required and name not in optional and is_link(value) and value[0] not in graph:
                problems.append(f"{label}: input {name!r} links to node {value[0]}, which is not in the workflow")
    if not has_output and not unjudged:
        problems.append("the workflow has no output node (SaveImage, SaveVideo, ...); the server would reject it")
    return problems
