"""ComfyUI workflows: load an API-format graph, find where the prompt/seed/size go, and inject them.

A workflow is a graph in ComfyUI's **API format**: ``{node_id: {"class_type", "inputs", "_meta"?}}``,
where an input is a literal or a link ``[source_node_id, output_index]``. :class:`Workflow` never changes
its own graph; :meth:`Workflow.prepare_image` and :meth:`Workflow.prepare_motion` return a filled-in deep
copy ready to POST, and the seed they used.

Where things go, unless a node title or id is given:

* **prompt** - the text encoder that feeds the sampler's ``positive`` input, found by walking links back
  from every sampler (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced via its guider)
  through conditioning pass-through nodes. Wan's ``WanImageToVideo`` takes ``positive``/``negative`` and
  outputs them again as outputs 0/1, so the walk follows the output index.
* **seed** - every literal ``seed`` / ``noise_seed`` input, all set to the same value.
* **size / length** - the latent node (EmptyLatentImage, EmptySD3LatentImage, WanImageToVideo, ...).
* **motion image** - the single LoadImage node.
* **filename_prefix** - every node that has one (SaveImage, SaveVideo, SaveWEBM, SaveAnimated*).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ... import workflows as bundled
from ...errors import ConfigError, WorkflowError
from .models import missing_models
from .trace import GraphQueries, Injection, node_title
from .validate import (
    SEED_LIMIT,
    SIZE_STEP,
    check_api_graph,
    check_motion_length,
    check_server_path,
    check_size,
    choose_seed,
    is_link,
    validate_graph,
)

__all__ = [
    "Workflow",
    "Injection",
    "WorkflowNotFoundError",
    "validate_graph",
    "missing_models",
    "check_motion_length",
    "SEED_LIMIT",
]

KINDS = ("image", "motion")

_FPS_INPUTS = {"CreateVideo": "fps", "SaveWEBM": "fps", "SaveAnimatedWEBP": "fps", "SaveAnimatedPNG": "fps",
               "VHS_VideoCombine": "frame_rate"}
_IMAGE_LOADERS = {"LoadImage"}


def _copy_graph(graph: dict[str, Any]) -> dict[str, Any]:
    """A copy whose nodes and ``inputs`` can be written without touching ``graph`` (ten times
    cheaper than ``deepcopy``: literals and links are never changed in place, only replaced)."""
    return {nid: {**node, "inputs": dict(node["inputs"])} for nid, node in graph.items()}


class WorkflowNotFoundError(WorkflowError, FileNotFoundError):
    """A workflow file does not exist (also a :class:`FileNotFoundError`)."""


class Workflow(GraphQueries):
    """An API-format ComfyUI graph plus the knowledge of where prompts, seeds and sizes go.

    ``graph`` is the graph as loaded (never modified), ``source`` says where it came from
    (``bundled:<name>`` or a file path) and ``digest`` is the sha256 of its canonical JSON
    (``sort_keys``, compact separators, UTF-8), usable in cache keys.
    """

    def __init__(self, graph: dict[str, Any], source: str = "<graph>", *, bundled_name: str | None = None) -> None:
        self.graph: dict[str, Any] = graph
        self.source = source
        self.bundled_name = bundled_name
        canonical = json.dumps(graph, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        self.digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"Workflow({self.source!r}, {len(self.graph)} nodes, digest={self.digest[:12]})"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_path: str | Path, kind: str = "image") -> Workflow:
        """Load a bundled workflow by name (see :func:`sceneforge.workflows.list_bundled`) or an
        API-format JSON file. ``kind`` ("image" or "motion") is what the caller will use it for; a bundled
        workflow of the other kind is refused, since it would fail on the server in a less clear way."""
        if kind not in KINDS:
            raise ConfigError(f"workflow kind must be 'image' or 'motion', got {kind!r}")
        name = str(name_or_path)
        if name in bundled.BUNDLED_KINDS and isinstance(name_or_path, str):
            actual = bundled.bundled_kind(name)
            if actual != kind:
                raise WorkflowError(
                    f"bundled workflow {name!r} is a {actual} workflow, not {kind}; use it for {actual}, "
                    f"or pick a {kind} workflow: {', '.join(bundled.list_bundled(kind))}"
                )
            return cls._parse(bundled.read_bundled(name), f"bundled:{name}", bundled_name=name)
        path = Path(name).expanduser()
        if not path.is_file():
            looks_like_name = path.suffix.lower() != ".json" and len(path.parts) == 1
            hint = (
                f"; bundled {kind} workflows: {', '.join(bundled.list_bundled(kind))} "
                f"(all: {', '.join(bundled.list_bundled())})"
            )
            what = "no bundled workflow or file named" if looks_like_name else "workflow file not found:"
            if path.exists():
                raise WorkflowError(f"workflow path {str(path)!r} is not a file")
            raise WorkflowNotFoundError(f"{what} {str(path)!r}{hint}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"cannot read workflow file {str(path)!r}: {exc}") from exc
        return cls._parse(text, str(path))

    @classmethod
    def _parse(cls, text: str, source: str, *, bundled_name: str | None = None) -> Workflow:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowError(f"{source} is not valid JSON: {exc}") from exc
        return cls(check_api_graph(data, source), source, bundled_name=bundled_name)

    @classmethod
    def from_graph(cls, graph: dict[str, Any], source: str = "<graph>") -> Workflow:
        """Wrap an API-format graph (deep-copied, so later changes by the caller do not leak in)."""
        return cls(check_api_graph(graph, source), source)

    # ------------------------------------------------------------------ node lookup
    # ------------------------------------------------------------------ other targets
    def _literal_inputs(
        self, names: tuple[str, ...], classes: Callable[[str], bool] | None = None
    ) -> list[tuple[str, str]]:
        """(node id, input) for each literal (not linked) input called one of ``names``."""
        return [
            (nid, name)
            for nid, node in self.graph.items()
            if classes is None or classes(node["class_type"])
            for name in names
            if name in node["inputs"] and not is_link(node["inputs"][name])
        ]

    def _seed_targets(self) -> list[Injection]:
        targets = [self._inj("seed", nid, name) for nid, name in self._literal_inputs(("seed", "noise_seed"))]
        for node in self.graph.values():
            for name in ("seed", "noise_seed"):
                link = node["inputs"].get(name)
                # a seed fed by a primitive node (PrimitiveInt, a "seed" widget node): set the primitive
                src = self.graph.get(link[0]) if is_link(link) else None
                if src is not None and "value" in src["inputs"] and not is_link(src["inputs"]["value"]):
                    inj = self._inj("seed", link[0], "value")
                    if inj not in targets:
                        targets.append(inj)
        return targets

    @staticmethod
    def _is_latent(class_type: str) -> bool:
        return (
            class_type in SIZE_STEP
            or (class_type.startswith("Empty") and "Latent" in class_type)
            or class_type.endswith(("ToVideo", "ToVideoLatent"))
        )

    def _size_targets(self, names: tuple[str, ...]) -> list[Injection]:
        return [self._inj(n, nid, n) for nid, n in self._literal_inputs(names, self._is_latent)]

    def _image_target(self, image_node: str | None) -> Injection:
        if image_node is not None:
            node_id = self._find(image_node, "--motion-image-node")
            if "image" not in self.graph[node_id]["inputs"]:
                raise WorkflowError(
                    f"{self.source}: node {self._describe([node_id])} has no 'image' input; "
                    "pass --motion-image-node with a LoadImage node"
                )
            return self._inj("image", node_id, "image")
        loaders = [nid for nid, n in self.graph.items() if n["class_type"] in _IMAGE_LOADERS]
        if len(loaders) != 1:
            problem = f"{len(loaders)} LoadImage nodes ({self._describe(loaders)})" if loaders else "no LoadImage node"
            raise WorkflowError(
                f"{self.source}: the motion workflow has {problem}; pass --motion-image-node with the title or "
                "id of the node that takes the scene's image"
            )
        return self._inj("image", loaders[0], "image")

    def _prefix_targets(self) -> list[Injection]:
        return [
            self._inj("filename_prefix", nid, name)
            for nid, name in self._literal_inputs(("filename_prefix",), lambda c: not c.startswith("Preview"))
        ]

    # ------------------------------------------------------------------ public
    def inspect(
        self,
        *,
        kind: str = "image",
        prompt_node: str | None = None,
        image_node: str | None = None,
        prompt_input: str = "text",
        negative_node: str | None = None,
    ) -> list[Injection]:
        """What :meth:`prepare_image` (``kind="image"``) or :meth:`prepare_motion` would write where.

        Raises the same :class:`WorkflowError` as ``prepare_*`` when the prompt (or, for motion, the image)
        node cannot be found. The negative is listed only when its encoder can be found.
        """
        if kind not in KINDS:
            raise ConfigError(f"workflow kind must be 'image' or 'motion', got {kind!r}")
        out, _ = self._prompt_and_negative(kind, prompt_node, None, prompt_input, False)
        try:
            out += self._prompt_and_negative(kind, prompt_node, negative_node, prompt_input, True)[1]
        except WorkflowError:
            pass  # only needed when a negative prompt is configured
        out += self._seed_targets() + self._size_targets(("width", "height"))
        if kind == "motion":
            out += self._size_targets(("length",))
            out.append(self._image_target(image_node))
        elif (reference := self.reference_target(image_node)) is not None:
            out.append(reference)
        return out + self._prefix_targets()

    def prepare_image(
        self,
        prompt: str,
        *,
        negative: str | None = None,
        seed: int | None = None,
        rng: random.Random | None = None,
        width: int | None = None,
        height: int | None = None,
        prompt_node: str | None = None,
        prompt_input: str = "text",
        filename_prefix: str | None = None,
        negative_node: str | None = None,
        reference_name: str | None = None,
        reference_node: str | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Return ``(graph, seed)``: a deep copy with the prompt (and negative, size, filename prefix when
        given) injected and every seed set to ``seed``, or to one random value drawn from ``rng``.

        A workflow with a reference node (see :meth:`reference_target`) gets ``reference_name`` (the
        uploaded reference image) there; it needs one, and a workflow without such a node refuses one.
        """
        return self._prepare(
            "image", prompt, negative=negative, seed=seed, rng=rng, width=width, height=height, length=None,
            prompt_node=prompt_node, negative_node=negative_node, prompt_input=prompt_input,
            filename_prefix=filename_prefix, image_name=reference_name, image_node=reference_node,
        )

    def prepare_motion(
        self,
        prompt: str,
        image_name: str,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        width: int | None = None,
        height: int | None = None,
        length: int | None = None,
        prompt_node: str | None = None,
        image_node: str | None = None,
        prompt_input: str = "text",
        filename_prefix: str | None = None,
        negative: str | None = None,
        negative_node: str | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Like :meth:`prepare_image` for an image-to-video workflow: also sets the LoadImage node's
        ``image`` to ``image_name`` (the name the server returned from ``/upload/image``) and the frame
        count to ``length`` (checked with :func:`check_motion_length`)."""
        return self._prepare(
            "motion", prompt, negative=negative, seed=seed, rng=rng, width=width, height=height, length=length,
            prompt_node=prompt_node, negative_node=negative_node, prompt_input=prompt_input,
            filename_prefix=filename_prefix, image_name=image_name, image_node=image_node,
        )

    def _prepare(
        self, kind: str, prompt: str, *, negative: str | None, seed: int | None, rng: random.Random | None,
        width: int | None, height: int | None, length: int | None, prompt_node: str | None,
        negative_node: str | None, prompt_input: str, filename_prefix: str | None,
        image_name: str | None, image_node: str | None,
    ) -> tuple[dict[str, Any], int]:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(f"the prompt must be a non-empty string, got {prompt!r}")
        if negative is not None and not isinstance(negative, str):
            raise ConfigError(f"the negative prompt must be a string, got {negative!r}")
        writes: list[tuple[Injection, Any]] = []
        pos, neg = self._prompt_and_negative(kind, prompt_node, negative_node, prompt_input, negative is not None)
        writes += [(t, prompt) for t in pos] + [(t, negative) for t in neg]
        used = choose_seed(seed, rng)
        writes += [(t, used) for t in self._seed_targets()]
        writes += self._size_writes(width, height, length)
        if kind == "motion":
            writes.append((self._image_target(image_node), check_server_path(image_name or "", "image name")))
        else:
            writes += self._reference_writes(image_name, image_node)
        if filename_prefix is not None:
            prefix = check_server_path(filename_prefix, "filename_prefix")
            writes += [(t, prefix) for t in self._prefix_targets()]
        graph = _copy_graph(self.graph)
        for target, value in writes:
            graph[target.node_id]["inputs"][target.input_name] = value
        return graph, used

    def _size_writes(self, width: int | None, height: int | None, length: int | None) -> list[tuple[Injection, Any]]:
        writes: list[tuple[Injection, Any]] = []
        for what, value in (("width", width), ("height", height), ("length", length)):
            if value is None:
                continue
            if what == "length":
                check_motion_length(value)
            targets = self._size_targets((what,))
            if not targets:
                raise WorkflowError(f"{self.source}: no latent node with a literal {what!r} input to set {what}={value} on")
            for t in targets:
                check_size(what, value, t.node_id, t.class_type)
            writes += [(t, value) for t in targets]
        return writes

    def takes_negative(self, prompt_node: str | None = None, prompt_input: str = "text") -> bool:
        """Whether a negative prompt has a text encoder to go to (not a zeroed-out negative)."""
        try:
            self._prompt_and_negative("image", prompt_node, None, prompt_input, True)
        except WorkflowError:
            return False
        return True

    def reference_target(self, reference_node: str | None = None) -> Injection | None:
        """Where an image workflow takes its reference image: the node named ``reference_node``
        (title or id), else the one LoadImage titled ``reference``; None when it takes none."""
        if reference_node is not None:
            node_id = self._find(reference_node, "--reference-node")
            if "image" not in self.graph[node_id]["inputs"]:
                raise WorkflowError(f"{self.source}: node {self._describe([node_id])} has no 'image' input; "
                                    "--reference-node must name a LoadImage node")
            return self._inj("reference", node_id, "image")
        titled = [nid for nid, n in self.graph.items()
                  if n["class_type"] in _IMAGE_LOADERS and node_title(n).casefold() == "reference"]
        if len(titled) > 1:
            raise WorkflowError(f"{self.source}: {len(titled)} LoadImage nodes are titled 'reference' "
                                f"({self._describe(titled)}); pass --reference-node with one id")
        return self._inj("reference", titled[0], "image") if titled else None

    def _reference_writes(self, name: str | None, reference_node: str | None) -> list[tuple[Injection, Any]]:
        target = self.reference_target(reference_node)
        if target is None and name is not None:
            raise WorkflowError(f"{self.source} has no reference image node (a LoadImage titled 'reference'); "
                                "use a workflow that takes one, such as flux-kontext, or --reference-node")
        if target is not None and name is None:
            raise WorkflowError(f"{self.source} takes a reference image (node {self._describe([target.node_id])}); "
                                "give the scene or the topic a reference_image")
        return [] if target is None else [(target, check_server_path(name or "", "reference image name"))]

    def output_nodes(self, object_info: Mapping[str, Any] | None = None) -> list[str]:
        """Ids of the output nodes (whose results appear in ``/history``), in graph order. With
        ``object_info`` the server's ``output_node`` flags decide; without, Save*/Preview* classes do."""
        def is_output(class_type: str) -> bool:
            if object_info is not None and class_type in object_info:
                return bool(object_info[class_type].get("output_node"))
            return class_type.startswith(("Save", "Preview")) or class_type == "VHS_VideoCombine"

        return [nid for nid, n in self.graph.items() if is_output(n["class_type"])]

    def fps(self) -> float | None:
        """Frames per second of the workflow's video (CreateVideo ``fps`` or an animated saver's), or None."""
        for node in self.graph.values():
            name = _FPS_INPUTS.get(node["class_type"])
            value = node["inputs"].get(name) if name else None
            if is_link(value) and value[0] in self.graph:
                value = self.graph[value[0]]["inputs"].get("value")  # fed by a PrimitiveFloat
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    def length(self) -> int | None:
        """The frame count the workflow makes as loaded (the latent node's ``length``), or None."""
        targets = self._size_targets(("length",))
        value = targets[0].value if targets else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None
