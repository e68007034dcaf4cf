"""Workflow loading, prompt/seed/size/image injection, and the motion length rule."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from sceneforge.comfy.graphs.workflow import (
    SEED_LIMIT,
    Injection,
    Workflow,
    WorkflowNotFoundError,
    check_motion_length,
)
from sceneforge.errors import ConfigError, UnsafePathError, WorkflowError
from sceneforge.workflows import BUNDLED_KINDS, bundled_kind, bundled_path, list_bundled

IMAGE = [n for n, k in BUNDLED_KINDS.items() if k == "image"]
MOTION = [n for n, k in BUNDLED_KINDS.items() if k == "motion"]


def node(class_type: str, title: str | None = None, **inputs):
    out = {"class_type": class_type, "inputs": inputs}
    if title is not None:
        out["_meta"] = {"title": title}
    return out


def t2i_graph(**extra) -> dict:
    """The classic default graph (sd15 reference shape), titled like a user would."""
    g = {
        "4": node("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name="m.safetensors"),
        "5": node("EmptyLatentImage", "Latent", width=512, height=512, batch_size=1),
        "6": node("CLIPTextEncode", "Positive", text="a cat", clip=["4", 1]),
        "7": node("CLIPTextEncode", "Negative", text="bad", clip=["4", 1]),
        "3": node("KSampler", "Sampler", seed=1, steps=20, cfg=8.0, sampler_name="euler", scheduler="normal",
                  denoise=1.0, model=["4", 0], positive=["6", 0], negative=["7", 0], latent_image=["5", 0]),
        "8": node("VAEDecode", None, samples=["3", 0], vae=["4", 2]),
        "9": node("SaveImage", "Save", filename_prefix="ComfyUI", images=["8", 0]),
    }
    g.update(extra)
    return g


def custom_advanced_graph(guider: str = "CFGGuider") -> dict:
    """SamplerCustomAdvanced with its prompt behind a guider and a RandomNoise seed (Flux-style)."""
    guider_inputs = {
        "CFGGuider": dict(model=["1", 0], positive=["10", 0], negative=["11", 0], cfg=3.5),
        "DualCFGGuider": dict(model=["1", 0], cond1=["10", 0], cond2=["12", 0], negative=["11", 0],
                              cfg_conds=8.0, cfg_cond2_negative=8.0, style="regular"),
        "BasicGuider": dict(model=["1", 0], conditioning=["13", 0]),
    }[guider]
    return {
        "1": node("UNETLoader", None, unet_name="flux.safetensors", weight_dtype="default"),
        "2": node("DualCLIPLoader", None, clip_name1="a.safetensors", clip_name2="b.safetensors", type="flux"),
        "3": node("VAELoader", None, vae_name="ae.safetensors"),
        "10": node("CLIPTextEncode", "Prompt", text="pos", clip=["2", 0]),
        "11": node("CLIPTextEncode", "Neg", text="neg", clip=["2", 0]),
        "12": node("CLIPTextEncode", "Second", text="other", clip=["2", 0]),
        "13": node("FluxGuidance", None, conditioning=["10", 0], guidance=3.5),
        "20": node("CFGGuider" if guider == "CFGGuider" else guider, None, **guider_inputs),
        "21": node("RandomNoise", None, noise_seed=5),
        "22": node("KSamplerSelect", None, sampler_name="euler"),
        "23": node("BasicScheduler", None, model=["1", 0], scheduler="simple", steps=20, denoise=1.0),
        "24": node("EmptySD3LatentImage", None, width=1024, height=1024, batch_size=1),
        "25": node("SamplerCustomAdvanced", None, noise=["21", 0], guider=["20", 0], sampler=["22", 0],
                   sigmas=["23", 0], latent_image=["24", 0]),
        "26": node("VAEDecode", None, samples=["25", 0], vae=["3", 0]),
        "27": node("SaveImage", None, filename_prefix="flux", images=["26", 0]),
    }


def targets(wf: Workflow, what: str, **kw) -> list[tuple[str, str]]:
    return [(i.node_id, i.input_name) for i in wf.inspect(**kw) if i.what == what]


# ----------------------------------------------------------------------------- loading
def test_bundled_list_matches_kinds_and_files():
    assert sorted(list_bundled()) == sorted(BUNDLED_KINDS)
    assert list_bundled("image") == sorted(IMAGE) and list_bundled("motion") == sorted(MOTION)
    for name in BUNDLED_KINDS:
        assert bundled_path(name).is_file() and bundled_path(name).name == f"{name}.json"
    assert bundled_kind("nope") is None
    with pytest.raises(KeyError, match="sdxl"):
        bundled_path("nope")


def test_load_bundled_and_digest():
    wf = Workflow.load("sdxl")
    assert wf.source == "bundled:sdxl" and wf.bundled_name == "sdxl"
    canonical = json.dumps(wf.graph, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert wf.digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert Workflow.from_graph(copy.deepcopy(wf.graph)).digest == wf.digest
    assert Workflow.load("sd15").digest != wf.digest


def test_load_api_file(tmp_path: Path):
    p = tmp_path / "wf.json"
    p.write_text(json.dumps(t2i_graph()), encoding="utf-8")
    wf = Workflow.load(str(p))
    assert wf.source == str(p) and wf.graph == t2i_graph()
    assert Workflow.load(p).graph == t2i_graph()  # a Path works too


def test_load_accepts_saved_post_body(tmp_path: Path):
    p = tmp_path / "body.json"
    p.write_text(json.dumps({"prompt": t2i_graph(), "client_id": "x"}), encoding="utf-8")
    assert Workflow.load(str(p)).graph == t2i_graph()


def test_ui_format_is_rejected_with_save_api_hint(tmp_path: Path):
    p = tmp_path / "ui.json"
    p.write_text(json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": [], "version": 0.4}))
    with pytest.raises(WorkflowError) as exc:
        Workflow.load(str(p))
    msg = str(exc.value)
    assert "UI-format" in msg and "Save (API)" in msg and "Export (API)" in msg and str(p) in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "no nodes"),
        ('{"3": {"inputs": {}}}', "node 3 has no class_type"),
        ('{"3": "KSampler"}', "node 3 has no class_type"),
        ('{"3": {"class_type": "KSampler", "inputs": [1]}}', "'inputs' must be an object"),
    ],
)
def test_bad_files_name_the_file_and_node(tmp_path: Path, content: str, expected: str):
    p = tmp_path / "bad.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(WorkflowError, match=expected) as exc:
        Workflow.load(str(p))
    assert str(p) in str(exc.value)


def test_missing_file_is_not_found(tmp_path: Path):
    missing = tmp_path / "nope.json"
    with pytest.raises(WorkflowNotFoundError) as exc:
        Workflow.load(str(missing))
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, WorkflowError)
    assert str(missing) in str(exc.value)
    with pytest.raises(WorkflowError, match="not a file"):
        Workflow.load(str(tmp_path))


def test_unknown_bundled_name_lists_the_bundled_ones():
    with pytest.raises(WorkflowError) as exc:
        Workflow.load("sdxl-turbo")
    msg = str(exc.value)
    assert "'sdxl-turbo'" in msg and all(n in msg for n in BUNDLED_KINDS)


def test_kind_is_checked():
    with pytest.raises(WorkflowError, match="motion workflow"):
        Workflow.load("wan22-14b-i2v")  # kind="image" by default
    with pytest.raises(WorkflowError, match="image workflow"):
        Workflow.load("sdxl", kind="motion")
    with pytest.raises(ConfigError, match="workflow kind must be 'image' or 'motion', got 'video'"):
        Workflow.load("sdxl", kind="video")
    assert Workflow.load("wan22-14b-i2v", kind="motion").bundled_name == "wan22-14b-i2v"


def test_from_graph_copies_and_checks():
    g = t2i_graph()
    wf = Workflow.from_graph(g, source="mine")
    g["6"]["inputs"]["text"] = "changed"
    assert wf.graph["6"]["inputs"]["text"] == "a cat" and wf.source == "mine"
    with pytest.raises(WorkflowError, match="Save \\(API\\)"):
        Workflow.from_graph({"nodes": [], "links": []})
    with pytest.raises(WorkflowError, match="node 1 has no class_type"):
        Workflow.from_graph({"1": {"inputs": {}}})


# ----------------------------------------------------------------------------- prompt detection
@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_prompt_and_negative_found_in_every_bundled_workflow(name: str):
    kind = BUNDLED_KINDS[name]
    wf = Workflow.load(name, kind=kind)
    by_title = {n["_meta"]["title"]: nid for nid, n in wf.graph.items()}
    if name == "flux-kontext":  # guidance-distilled: the negative is zeroed out, the prompt goes to the encoder
        assert targets(wf, "prompt", kind=kind) == [(by_title["CLIP Text Encode (Positive Prompt)"], "text")]
        with pytest.raises(WorkflowError, match="negative input"):
            wf.prepare_image("a red fox", negative="ugly", seed=1, reference_name="r.png")
        return
    assert targets(wf, "prompt", kind=kind) == [(by_title["Positive Prompt"], "text")]
    assert targets(wf, "negative", kind=kind) == [(by_title["Negative Prompt"], "text")]
    if kind == "image":
        g, _ = wf.prepare_image("a red fox", negative="ugly", seed=1)
    else:
        g, _ = wf.prepare_motion("the fox runs", "up/fox.png", seed=1, negative="ugly")
    assert g[by_title["Positive Prompt"]]["inputs"]["text"] in ("a red fox", "the fox runs")
    assert g[by_title["Negative Prompt"]]["inputs"]["text"] == "ugly"


def test_wan_prompt_is_found_through_wan_image_to_video():
    # Both 14B samplers take positive from WanImageToVideo output 0, whose positive input is the encoder.
    wf = Workflow.load("wan22-14b-i2v", kind="motion")
    assert [wf.graph[k]["inputs"]["positive"] for k in ("86", "85")] == [["98", 0], ["98", 0]]
    assert targets(wf, "prompt", kind="motion") == [("93", "text")]
    assert targets(wf, "negative", kind="motion") == [("89", "text")]


@pytest.mark.parametrize(("guider", "prompt_id"), [("CFGGuider", "10"), ("DualCFGGuider", "10"), ("BasicGuider", "10")])
def test_sampler_custom_advanced_follows_the_guider(guider: str, prompt_id: str):
    wf = Workflow.from_graph(custom_advanced_graph(guider))
    assert targets(wf, "prompt") == [(prompt_id, "text")]
    g, seed = wf.prepare_image("a lake", seed=99)
    assert g[prompt_id]["inputs"]["text"] == "a lake" and g["21"]["inputs"]["noise_seed"] == 99 == seed
    if guider == "BasicGuider":
        with pytest.raises(WorkflowError, match="negative"):
            wf.prepare_image("a lake", negative="x")
    else:
        assert wf.prepare_image("a lake", negative="blur")[0]["11"]["inputs"]["text"] == "blur"


def test_pass_through_nodes_are_followed():
    g = t2i_graph()
    g["30"] = node("ControlNetLoader", None, control_net_name="cn.safetensors")
    g["31"] = node("LoadImage", None, image="pose.png")
    g["32"] = node("ControlNetApplyAdvanced", None, positive=["33", 0], negative=["7", 0], control_net=["30", 0],
                   image=["31", 0], strength=1.0, start_percent=0.0, end_percent=1.0)
    g["33"] = node("ConditioningSetArea", None, conditioning=["6", 0], width=64, height=64, x=0, y=0, strength=1.0)
    g["3"]["inputs"]["positive"], g["3"]["inputs"]["negative"] = ["32", 0], ["32", 1]
    wf = Workflow.from_graph(g)
    assert targets(wf, "prompt") == [("6", "text")] and targets(wf, "negative") == [("7", "text")]


def test_sdxl_dual_text_encoder_gets_both_inputs():
    g = t2i_graph()
    g["6"] = node("CLIPTextEncodeSDXL", "Positive", clip=["4", 1], width=1024, height=1024, crop_w=0, crop_h=0,
                  target_width=1024, target_height=1024, text_g="g", text_l="l")
    out, _ = Workflow.from_graph(g).prepare_image("castle", seed=0)
    assert out["6"]["inputs"]["text_g"] == out["6"]["inputs"]["text_l"] == "castle"


def test_text_fed_by_a_primitive_is_overwritten_on_the_encoder():
    g = t2i_graph()
    g["40"] = node("PrimitiveStringMultiline", "Prompt text", value="old")
    g["6"]["inputs"]["text"] = ["40", 0]
    out, _ = Workflow.from_graph(g).prepare_image("new", seed=0)
    assert out["6"]["inputs"]["text"] == "new" and out["40"]["inputs"]["value"] == "old"


def test_ambiguous_prompt_asks_for_prompt_node():
    g = t2i_graph()
    g["10"] = node("CLIPTextEncode", "Style", text="oil painting", clip=["4", 1])
    g["11"] = node("ConditioningCombine", None, conditioning_1=["6", 0], conditioning_2=["10", 0])
    g["3"]["inputs"]["positive"] = ["11", 0]
    wf = Workflow.from_graph(g)
    with pytest.raises(WorkflowError) as exc:
        wf.prepare_image("x")
    assert "--prompt-node" in str(exc.value) and "6 (CLIPTextEncode 'Positive')" in str(exc.value)
    assert wf.prepare_image("x", prompt_node="Style", seed=0)[0]["10"]["inputs"]["text"] == "x"
    with pytest.raises(WorkflowError, match="--motion-prompt-node"):
        wf.inspect(kind="motion")


def test_two_samplers_with_different_encoders_are_ambiguous():
    g = t2i_graph()
    g["10"] = node("CLIPTextEncode", "Refiner positive", text="r", clip=["4", 1])
    g["12"] = node("KSampler", None, seed=2, steps=5, cfg=7.0, sampler_name="euler", scheduler="normal", denoise=0.3,
                   model=["4", 0], positive=["10", 0], negative=["7", 0], latent_image=["3", 0])
    with pytest.raises(WorkflowError, match="several nodes"):
        Workflow.from_graph(g).prepare_image("x")


def test_nothing_found_asks_for_prompt_node():
    g = t2i_graph()
    g["3"]["inputs"]["positive"] = ["99", 0]  # dangling link
    with pytest.raises(WorkflowError, match="pass --prompt-node"):
        Workflow.from_graph(g).prepare_image("x")


def test_custom_sampler_falls_back_to_the_only_encoder():
    g = t2i_graph()
    del g["7"]
    g["3"] = node("MyFancySampler", None, model=["4", 0], cond=["6", 0], latent=["5", 0], seed=3)
    g["8"]["inputs"]["samples"] = ["3", 0]
    assert targets(Workflow.from_graph(g), "prompt") == [("6", "text")]


def test_zeroed_out_negative():
    # Z-Image templates feed the negative with ConditioningZeroOut of the positive encoder.
    g = t2i_graph()
    del g["7"]
    g["12"] = node("ConditioningZeroOut", None, conditioning=["6", 0])
    g["3"]["inputs"]["negative"] = ["12", 0]
    wf = Workflow.from_graph(g)
    assert targets(wf, "prompt") == [("6", "text")] and targets(wf, "negative") == []
    assert wf.prepare_image("x", seed=0)[0]["6"]["inputs"]["text"] == "x"
    with pytest.raises(WorkflowError, match="zeroed out"):
        wf.prepare_image("x", negative="blurry")


def test_shared_positive_and_negative_encoder_is_refused_for_a_negative():
    g = t2i_graph()
    g["3"]["inputs"]["negative"] = ["6", 0]
    del g["7"]
    wf = Workflow.from_graph(g)
    assert wf.prepare_image("x", seed=0)[0]["6"]["inputs"]["text"] == "x"
    with pytest.raises(WorkflowError, match="share node 6"):
        wf.prepare_image("x", negative="y")


def test_prompt_node_by_title_id_and_case():
    wf = Workflow.from_graph(t2i_graph())
    assert targets(wf, "prompt", prompt_node="Negative") == [("7", "text")]  # exact title
    assert targets(wf, "prompt", prompt_node="7") == [("7", "text")]  # node id
    assert targets(wf, "prompt", prompt_node="nEgAtIvE") == [("7", "text")]  # case-insensitive title
    g, _ = wf.prepare_image("p", prompt_node="negative", seed=0)
    assert g["7"]["inputs"]["text"] == "p" and g["6"]["inputs"]["text"] == "a cat"


def test_exact_title_wins_over_node_id():
    g = t2i_graph()
    g["7"]["_meta"]["title"] = "6"  # a node titled like another node's id
    assert targets(Workflow.from_graph(g), "prompt", prompt_node="6") == [("7", "text")]


def test_prompt_node_errors():
    g = t2i_graph()
    g["7"]["_meta"]["title"] = "Positive"
    wf = Workflow.from_graph(g)
    with pytest.raises(WorkflowError, match="2 nodes are titled 'Positive'"):
        wf.prepare_image("x", prompt_node="Positive")
    with pytest.raises(WorkflowError) as exc:
        wf.prepare_image("x", prompt_node="Nope")
    assert "'Nope'" in str(exc.value) and "'Save'" in str(exc.value)  # lists the titles
    with pytest.raises(WorkflowError, match="has no input 'text'"):
        wf.prepare_image("x", prompt_node="Latent")


def test_prompt_input_names_another_input():
    g = t2i_graph()
    g["6"] = node("TextEncodeQwenImageEdit", "Edit", clip=["4", 1], prompt="old")
    wf = Workflow.from_graph(g)
    assert targets(wf, "prompt") == [("6", "prompt")]  # known encoder
    g["6"] = node("SomeCustomEncoder", "Custom", clip=["4", 1], caption="old")
    wf = Workflow.from_graph(g)
    assert wf.prepare_image("x", prompt_node="Custom", prompt_input="caption", seed=0)[0]["6"]["inputs"]["caption"] == "x"
    assert targets(wf, "prompt", prompt_input="caption") == [("6", "caption")]
    with pytest.raises(WorkflowError, match="has no input 'wording'"):
        wf.prepare_image("x", prompt_node="Custom", prompt_input="wording")


def test_empty_prompt_is_refused():
    with pytest.raises(ConfigError, match="the prompt must be a non-empty string, got '   '"):
        Workflow.load("sdxl").prepare_image("   ")


# ----------------------------------------------------------------------------- seeds
def seed_values(g: dict) -> list[int]:
    return [n["inputs"][k] for n in g.values() for k in ("seed", "noise_seed") if k in n["inputs"]]


@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_random_seed_comes_from_the_injected_rng(name: str):
    kind = BUNDLED_KINDS[name]
    wf = Workflow.load(name, kind=kind)
    expected = random.Random(42).randrange(SEED_LIMIT)
    if kind == "image":
        reference = "r.png" if wf.reference_target() is not None else None
        g, seed = wf.prepare_image("x", rng=random.Random(42), reference_name=reference)
    else:
        g, seed = wf.prepare_motion("x", "in.png", rng=random.Random(42))
    values = seed_values(g)
    assert seed == expected and values and set(values) == {seed}
    assert len(values) == (2 if name.startswith("wan22-14b") else 1)


def test_random_seeds_differ_and_stay_portable():
    wf = Workflow.load("sdxl")
    rng = random.Random(7)
    seeds = [wf.prepare_image("x", rng=rng)[1] for _ in range(20)]
    assert len(set(seeds)) == 20 and all(0 <= s < 2**32 for s in seeds)
    assert isinstance(wf.prepare_image("x")[1], int)  # no rng: module random


def test_fixed_seed_everywhere():
    g, seed = Workflow.from_graph(custom_advanced_graph()).prepare_image("x", seed=2**64 - 1)
    assert seed == 2**64 - 1 and seed_values(g) == [seed]
    g, seed = Workflow.load("wan22-14b-i2v", kind="motion").prepare_motion("x", "i.png", seed=0)
    assert seed == 0 and seed_values(g) == [0, 0]


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "7", True])
def test_bad_seed(bad):
    with pytest.raises(ConfigError, match=rf"seed must be a whole number from 0 to {2**64 - 1}, got {re.escape(repr(bad))}$"):
        Workflow.load("sdxl").prepare_image("x", seed=bad)


def test_seed_fed_by_a_primitive_node():
    g = t2i_graph()
    g["50"] = node("PrimitiveInt", "Seed", value=3)
    g["3"]["inputs"]["seed"] = ["50", 0]
    out, seed = Workflow.from_graph(g).prepare_image("x", seed=77)
    assert out["50"]["inputs"]["value"] == 77 and out["3"]["inputs"]["seed"] == ["50", 0]


# ----------------------------------------------------------------------------- size, length, image, prefix
def test_width_height_go_to_the_latent_node():
    g, _ = Workflow.load("sdxl").prepare_image("x", seed=0, width=1024, height=1536)
    assert (g["5"]["inputs"]["width"], g["5"]["inputs"]["height"]) == (1024, 1536)
    g, _ = Workflow.load("sdxl").prepare_image("x", seed=0, width=832)
    assert (g["5"]["inputs"]["width"], g["5"]["inputs"]["height"]) == (832, 1344)  # height kept
    g, _ = Workflow.load("z-image-turbo").prepare_image("x", seed=0, width=1088, height=1920)
    assert g["5"]["class_type"] == "EmptySD3LatentImage" and g["5"]["inputs"]["width"] == 1088


@pytest.mark.parametrize(
    ("name", "node_id", "w", "h", "length"),
    [("wan22-14b-i2v", "98", 720, 1280, 49), ("wan22-14b-i2v-4step", "98", 480, 848, 33), ("wan22-5b-ti2v", "55", 736, 1280, 97)],
)
def test_motion_size_and_length(name, node_id, w, h, length):
    g, _ = Workflow.load(name, kind="motion").prepare_motion("x", "img.png", seed=1, width=w, height=h, length=length)
    assert {k: g[node_id]["inputs"][k] for k in ("width", "height", "length")} == {"width": w, "height": h, "length": length}


def test_size_must_suit_the_node():
    with pytest.raises(ConfigError, match="multiple of 8; use 760 or 768"):
        Workflow.load("sdxl").prepare_image("x", width=767)
    with pytest.raises(ConfigError, match="multiple of 16; use 464 or 480"):
        Workflow.load("wan22-14b-i2v", kind="motion").prepare_motion("x", "i.png", width=472)
    with pytest.raises(ConfigError, match="multiple of 32; use 704 or 736"):
        Workflow.load("wan22-5b-ti2v", kind="motion").prepare_motion("x", "i.png", width=720)
    with pytest.raises(ConfigError, match="height must be a positive whole number, got 0"):
        Workflow.load("sdxl").prepare_image("x", height=0)


def test_size_without_a_latent_node():
    g = custom_advanced_graph()
    del g["24"]
    g["25"]["inputs"]["latent_image"] = ["4", 0]
    with pytest.raises(WorkflowError, match="no latent node"):
        Workflow.from_graph(g).prepare_image("x", width=512)


def test_length_is_checked_and_needs_a_length_node():
    wf = Workflow.load("wan22-14b-i2v", kind="motion")
    with pytest.raises(ConfigError, match="use 77 or 81"):
        wf.prepare_motion("x", "i.png", length=80)
    no_length = Workflow.from_graph(t2i_graph(**{"31": node("LoadImage", None, image="a.png")}))
    with pytest.raises(WorkflowError, match="literal 'length'"):
        no_length.prepare_motion("x", "a.png", length=81)


@pytest.mark.parametrize(("length", "ok"), [(1, True), (5, True), (81, True), (121, True), (2, False), (80, False), (82, False), (0, False), (-3, False)])
def test_check_motion_length(length: int, ok: bool):
    if ok:
        assert check_motion_length(length) == length
    else:
        with pytest.raises(ConfigError, match="4k\\+1"):
            check_motion_length(length)
    if length == 82:
        with pytest.raises(ConfigError, match="use 81 or 85"):
            check_motion_length(length)


@pytest.mark.parametrize("bad", [81.0, "81", True, None])
def test_check_motion_length_types(bad):
    with pytest.raises(ConfigError, match=rf"motion length must be a whole number of frames, got {re.escape(repr(bad))}$"):
        check_motion_length(bad)


@pytest.mark.parametrize(("name", "loader"), [("wan22-14b-i2v", "97"), ("wan22-14b-i2v-4step", "97"), ("wan22-5b-ti2v", "56")])
def test_motion_image_goes_to_the_load_image_node(name: str, loader: str):
    wf = Workflow.load(name, kind="motion")
    g, _ = wf.prepare_motion("x", "sceneforge/scene_1.png", seed=0)
    assert g[loader]["inputs"]["image"] == "sceneforge/scene_1.png"
    assert targets(wf, "image", kind="motion") == [(loader, "image")]
    assert wf.prepare_motion("x", "b.png", image_node="Load Image", seed=0)[0][loader]["inputs"]["image"] == "b.png"


def test_motion_image_node_none_or_several():
    with pytest.raises(WorkflowError, match="no LoadImage node.*--motion-image-node"):
        Workflow.load("sdxl").prepare_motion("x", "a.png")
    g = copy.deepcopy(Workflow.load("wan22-14b-i2v", kind="motion").graph)
    g["300"] = node("LoadImage", "End frame", image="end.png")
    wf = Workflow.from_graph(g)
    with pytest.raises(WorkflowError, match="2 LoadImage nodes.*--motion-image-node"):
        wf.prepare_motion("x", "a.png")
    out, _ = wf.prepare_motion("x", "a.png", image_node="300", seed=0)
    assert out["300"]["inputs"]["image"] == "a.png" and out["97"]["inputs"]["image"] == "wan22_i2v_input.png"
    with pytest.raises(WorkflowError, match="no 'image' input"):
        wf.prepare_motion("x", "a.png", image_node="Positive Prompt")


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "/abs.png", "a/../../b.png", "c:\\x.png", "a\\b.png", "x\x00.png"])
def test_unsafe_image_names(bad: str):
    with pytest.raises(UnsafePathError):
        Workflow.load("wan22-14b-i2v", kind="motion").prepare_motion("x", bad)


def test_filename_prefix_on_every_saver():
    g, _ = Workflow.load("wan22-14b-i2v", kind="motion").prepare_motion("x", "i.png", filename_prefix="sf/topic/scene_3")
    assert g["108"]["inputs"]["filename_prefix"] == g["200"]["inputs"]["filename_prefix"] == "sf/topic/scene_3"
    extra = {
        "20": node("SaveWEBM", None, images=["8", 0], filename_prefix="w", codec="vp9", fps=24.0, crf=32.0),
        "21": node("SaveAnimatedWEBP", None, images=["8", 0], filename_prefix="a", fps=6.0, lossless=True, quality=80, method="default"),
        "22": node("PreviewImage", None, images=["8", 0]),
    }
    g, _ = Workflow.from_graph(t2i_graph(**extra)).prepare_image("x", seed=0, filename_prefix="p/q")
    assert [g[k]["inputs"]["filename_prefix"] for k in ("9", "20", "21")] == ["p/q"] * 3
    assert "filename_prefix" not in g["22"]["inputs"]


@pytest.mark.parametrize("bad", ["", "../out", "/tmp/x", "a/../../b", "~/x"])
def test_unsafe_filename_prefix(bad: str):
    with pytest.raises(UnsafePathError):
        Workflow.load("sdxl").prepare_image("x", filename_prefix=bad)


# ----------------------------------------------------------------------------- no mutation, outputs, inspect
def test_prepare_does_not_mutate():
    for name, kind in BUNDLED_KINDS.items():
        wf = Workflow.load(name, kind=kind)
        before, digest = copy.deepcopy(wf.graph), wf.digest
        if kind == "image":
            reference = "r.png" if wf.reference_target() is not None else None
            g, _ = wf.prepare_image("p", negative=None if reference else "n", seed=3, width=512, height=768,
                                    filename_prefix="x/y", reference_name=reference)
        else:
            g, _ = wf.prepare_motion("p", "i.png", negative="n", seed=3, width=480, height=832, length=49,
                                     filename_prefix="x/y")
        assert wf.graph == before and wf.digest == digest
        for n in g.values():  # the result shares nothing with the template
            n["inputs"]["__poke__"] = 1
        assert wf.graph == before
        json.dumps(g)  # ready to POST


def test_output_nodes_and_fps():
    assert Workflow.load("sdxl").output_nodes() == ["9"]
    assert Workflow.load("sdxl").fps() is None
    wf = Workflow.load("wan22-14b-i2v", kind="motion")
    assert wf.output_nodes() == ["108", "200"] and wf.fps() == 16.0 and wf.length() == 81
    wf = Workflow.load("wan22-5b-ti2v", kind="motion")
    assert wf.output_nodes() == ["58", "200"] and wf.fps() == 24.0 and wf.length() == 121
    info = {"SaveVideo": {"output_node": True}, "SaveImage": {"output_node": False}}
    assert Workflow.load("wan22-5b-ti2v", kind="motion").output_nodes(info) == ["58"]
    g = t2i_graph(**{"20": node("PrimitiveFloat", None, value=12.0),
                     "21": node("CreateVideo", None, images=["8", 0], fps=["20", 0])})
    assert Workflow.from_graph(g).fps() == 12.0


def test_inspect_lists_every_injection():
    rows = Workflow.load("wan22-14b-i2v", kind="motion").inspect(kind="motion")
    assert all(isinstance(r, Injection) for r in rows)
    got = [(r.what, r.node_id, r.input_name) for r in rows]
    assert got == [
        ("prompt", "93", "text"), ("negative", "89", "text"),
        ("seed", "86", "noise_seed"), ("seed", "85", "noise_seed"),
        ("width", "98", "width"), ("height", "98", "height"), ("length", "98", "length"),
        ("image", "97", "image"),
        ("filename_prefix", "108", "filename_prefix"), ("filename_prefix", "200", "filename_prefix"),
    ]
    first = rows[0]
    assert first.class_type == "CLIPTextEncode" and first.title == "Positive Prompt" and "dragon" in first.value
    image_rows = {r.what for r in Workflow.load("sdxl").inspect()}
    assert image_rows == {"prompt", "negative", "seed", "width", "height", "filename_prefix"}
    with pytest.raises(ConfigError, match="workflow kind must be 'image' or 'motion', got 'video'"):
        Workflow.load("sdxl").inspect(kind="video")


def test_reference_node_needs_a_reference_and_others_refuse_one():
    kontext, sdxl = Workflow.load("flux-kontext"), Workflow.load("sdxl")
    with pytest.raises(WorkflowError, match="takes a reference image .*give the scene or the topic a reference_image"):
        kontext.prepare_image("a cat", seed=1)
    with pytest.raises(WorkflowError, match="has no reference image node"):
        sdxl.prepare_image("a cat", seed=1, reference_name="r.png")
    with pytest.raises(UnsafePathError):
        kontext.prepare_image("a cat", seed=1, reference_name="../../r.png")
    # --reference-node names the node by title or id
    g = copy.deepcopy(kontext.graph)
    g["142"]["_meta"]["title"] = "the character"
    renamed = Workflow.from_graph(g)
    assert renamed.reference_target() is None
    target = renamed.reference_target("the character")
    assert target is not None and target.node_id == "142"
    out, _ = renamed.prepare_image("a cat", seed=1, reference_name="r.png", reference_node="142")
    assert out["142"]["inputs"]["image"] == "r.png"
