"""Every bundled workflow against the real node specs of a current ComfyUI (/object_info), the reference
graphs a real server accepted, and the server's recorded validation answers."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from typing import Any

import pytest
from comfy_helpers import OBJECT_INFO_FULL, REFERENCE, SAMPLES

from sceneforge.comfy.graphs.validate import is_link
from sceneforge.comfy.graphs.workflow import Workflow, missing_models, validate_graph
from sceneforge.workflows import BUNDLED_KINDS


@cache
def object_info() -> dict[str, Any]:
    """The recorded /object_info of a real server: all 887 classes.

    The recording's ``object_info_selected.json`` (38 classes) is not needed: each of its specs is
    equal to the same class's spec in this full copy.
    """
    with gzip.open(OBJECT_INFO_FULL, "rt", encoding="utf-8") as f:
        return json.load(f)


def load(name: str) -> Workflow:
    return Workflow.load(name, kind=BUNDLED_KINDS[name])


#: Guidance-distilled models (cfg 1) whose negative is zeroed out: no negative prompt to set.
NO_NEGATIVE = {"flux-kontext"}

EXPECTED_MODELS = {
    "sdxl": ["sd_xl_base_1.0.safetensors"],
    "sd15": ["v1-5-pruned-emaonly.safetensors"],
    "z-image-turbo": ["z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"],
    "flux-kontext": ["flux1-dev-kontext_fp8_scaled.safetensors", "clip_l.safetensors",
                     "t5xxl_fp8_e4m3fn_scaled.safetensors", "ae.safetensors"],
    "wan22-14b-i2v": [
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "wan_2.1_vae.safetensors",
        "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
        "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
    ],
    "wan22-14b-i2v-4step": [
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "wan_2.1_vae.safetensors",
        "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
        "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
        "wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
        "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
    ],
    "wan22-5b-ti2v": [
        "wan2.2_ti2v_5B_fp16.safetensors",
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "wan2.2_vae.safetensors",
    ],
}


def test_every_bundled_workflow_is_covered():
    assert sorted(EXPECTED_MODELS) == sorted(BUNDLED_KINDS)


# ----------------------------------------------------------------------------- against /object_info
@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_bundled_workflow_validates(name: str):
    info = object_info()
    wf = load(name)
    assert all(n["class_type"] in info for n in wf.graph.values())
    assert validate_graph(wf.graph, info) == []
    assert all(n.get("_meta", {}).get("title") for n in wf.graph.values()), "every node carries a title"


@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_missing_models_names_exactly_the_model_files(name: str):
    # The recorded server has no model files: its model combos are [] (or ["pixel_space"] for VAEs).
    assert missing_models(load(name).graph, object_info()) == EXPECTED_MODELS[name]


@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_missing_models_is_empty_once_the_server_has_them(name: str):
    info = copy.deepcopy(object_info())
    wf = load(name)
    for node in wf.graph.values():
        spec = info[node["class_type"]]["input"]
        for section in ("required", "optional"):
            for key, ispec in (spec.get(section) or {}).items():
                value = node["inputs"].get(key)
                if isinstance(ispec[0], list) and value in EXPECTED_MODELS[name]:
                    ispec[0].append(value)
                elif ispec[0] == "COMBO" and value in EXPECTED_MODELS[name]:
                    ispec[1]["options"].append(value)
    assert missing_models(wf.graph, info) == []
    assert validate_graph(wf.graph, info) == []


@pytest.mark.parametrize("name", list(BUNDLED_KINDS))
def test_prepared_graphs_still_validate(name: str):
    wf = load(name)
    if BUNDLED_KINDS[name] == "image":
        takes_negative = name not in NO_NEGATIVE
        reference = "character.png" if wf.reference_target() is not None else None
        g, _ = wf.prepare_image("a fox", negative="blur" if takes_negative else None, seed=2**64 - 1, width=720,
                                height=1280, filename_prefix="t/s1", reference_name=reference)
    else:
        g, _ = wf.prepare_motion("the fox runs", "fox.png", seed=5, length=49, filename_prefix="t/s1/frame")
    assert validate_graph(g, object_info()) == []


def test_validate_graph_reports_problems_by_node():
    info = object_info()
    g = copy.deepcopy(load("wan22-14b-i2v").graph)
    g["98"]["inputs"]["width"] = 99999
    g["86"]["inputs"]["sampler_name"] = "bogus"
    del g["85"]["inputs"]["cfg"]
    g["87"]["inputs"]["samples"] = ["85", 3]
    g["200"]["inputs"]["images"] = ["404", 0]
    g["500"] = {"class_type": "NoSuchNode", "inputs": {}}
    g["94"]["inputs"]["images"] = ["86", 0]  # LATENT into IMAGE
    problems = validate_graph(g, info)
    expected = [
        "node 98 (WanImageToVideo): input 'width' is 99999, above the maximum 16384",
        "node 86 (KSamplerAdvanced): input 'sampler_name' is 'bogus', not one of",
        "node 85 (KSamplerAdvanced): required input 'cfg' is missing",
        "node 87 (VAEDecode): input 'samples' links to output 3 of node 85 (KSamplerAdvanced), which has 1 output(s)",
        "node 200 (SaveImage): input 'images' links to node 404, which is not in the workflow",
        "node 500 (NoSuchNode): unknown node type 'NoSuchNode'",
        "node 94 (CreateVideo): input 'images' expects IMAGE but node 86 (KSamplerAdvanced) output 0 is LATENT",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), (line, problems)
    assert len(problems) == len(expected)


def test_save_video_dynamic_format_is_checked():
    # SaveVideo's "format" is a V3 dynamic combo: the server accepts a graph without it and then crashes at
    # run time (PROTOCOL.md 4.2), so the offline check is stricter.
    info = object_info()
    g = copy.deepcopy(load("wan22-5b-ti2v").graph)
    del g["58"]["inputs"]["format.codec"]
    assert validate_graph(g, info) == ["node 58 (SaveVideo): required input 'format.codec' is missing (needed by format='auto')"]
    g["58"]["inputs"]["codec"] = "auto"  # the legacy undotted name also works
    assert validate_graph(g, info) == []
    g["58"]["inputs"]["format"] = "gif"
    assert validate_graph(g, info)[0].startswith("node 58 (SaveVideo): input 'format' is 'gif', not one of 'auto'")
    del g["58"]["inputs"]["format"]
    assert validate_graph(g, info) == ["node 58 (SaveVideo): required input 'format' is missing"]


def test_validate_graph_edge_cases():
    info = object_info()
    assert validate_graph({}, info) == ["the workflow has no nodes"]
    only_latent = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": "64", "height": 64.0, "batch_size": 1}}}
    assert validate_graph(only_latent, info) == ["the workflow has no output node (SaveImage, SaveVideo, ...); the server would reject it"]
    bad_number = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": "wide", "height": 64, "batch_size": 1}}}
    assert validate_graph(bad_number, info)[0] == "node 1 (EmptyLatentImage): input 'width' must be an INT, got 'wide'"
    assert is_link(["1", 0]) and not is_link(["1", True]) and not is_link([1, 0]) and not is_link("1")


# ----------------------------------------------------------------------------- the recorded server agrees
# samples/errors/*.json: real POST /prompt answers. The value is what validate_graph must say (a prefix of
# its only problem), or None where the server accepted the graph or only rejected what we leave alone on
# purpose (the uploaded LoadImage file, model files: see missing_models).
RECORDED = {
    "a_unknown_class_type.json": "node 1 (NoSuchNodeXYZ): unknown node type",
    "a2_unknown_class_type_only_node.json": "node 1 (NoSuchNodeXYZ): unknown node type",
    "a3_missing_class_type.json": "node 1: no class_type",
    "b_missing_required_input.json": "node 1 (EmptyImage): required input 'color' is missing",
    "b2_missing_required_link_input.json": "node 2 (SaveImage): required input 'images' is missing",
    "c1_loadimage_nonexistent.json": None,
    "c2_checkpoint_nonexistent.json": None,
    "c3_int_above_max.json": "node 1 (EmptyImage): input 'width' is 99999, above the maximum 16384",
    "c4_int_below_min.json": "node 1 (EmptyImage): input 'width' is 0, below the minimum 1",
    "c5_wrong_type_string_for_int.json": "node 1 (EmptyImage): input 'width' must be an INT",
    "c6_string_number_for_int_coerced.json": None,
    "c7_combo_value_not_in_list.json": "node 3 (ImageScale): input 'upscale_method' is 'bogus'",
    "c8_link_to_missing_node.json": "node 2 (SaveImage): input 'images' links to node 99",
    "c9_link_type_mismatch.json": "node 2 (SaveImage): input 'images' expects IMAGE but node 1 (EmptyLatentImage) output 0 is LATENT",
    "c10_link_bad_output_index.json": "node 2 (SaveImage): input 'images' links to output 5 of node 1",
    "c11_no_output_node.json": "the workflow has no output node",
    "c12_two_errors_two_nodes.json": "node 3 (EmptyImage): input 'width' is -5, below the minimum 1",
    "c13_one_good_output_one_bad.json": None,
}


@pytest.mark.parametrize(("file", "expected"), list(RECORDED.items()))
def test_validate_graph_agrees_with_the_recorded_server(file: str, expected: str | None):
    record = json.loads((SAMPLES / "errors" / file).read_text(encoding="utf-8"))
    graph, status = record["request"]["json"]["prompt"], record["response"]["status"]
    problems = validate_graph(graph, object_info())
    if expected is None:
        assert problems == []
        if file == "c2_checkpoint_nonexistent.json":  # value_not_in_list for the checkpoint
            assert status == 400 and missing_models(graph, object_info()) == ["sd_xl_base_1.0.safetensors"]
    else:
        assert status == 400 and len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("ref", ["wan22_14b_i2v_api.json", "wan22_14b_i2v_lightx2v_api.json", "wan22_5b_ti2v_api.json",
                                 "sd15_t2i_api.json", "sdxl_t2i_api.json"])
def test_missing_models_agrees_with_the_recorded_server(ref: str):
    """samples/wan/A_no_models: the server's value_not_in_list answers name exactly these files."""
    record = json.loads((SAMPLES / "wan" / "A_no_models" / ref).read_text(encoding="utf-8"))
    graph = record["request"]["json"]["prompt"]
    node_errors = record["response"]["json"]["node_errors"]
    refused = {
        graph[nid]["inputs"][e["extra_info"]["input_name"]]
        for nid, ne in node_errors.items()
        for e in ne["errors"]
        if e["type"] == "value_not_in_list"
    }
    assert set(missing_models(graph, object_info())) == refused
    assert validate_graph(graph, object_info()) == []


# ----------------------------------------------------------------------------- reference structure
MOTION_REFERENCE = {
    "wan22-14b-i2v": ("wan22_14b_i2v_api.json", "98", (480, 832)),
    "wan22-14b-i2v-4step": ("wan22_14b_i2v_lightx2v_api.json", "98", (480, 832)),
    "wan22-5b-ti2v": ("wan22_5b_ti2v_api.json", "55", (704, 1280)),
}


@pytest.mark.parametrize("name", list(MOTION_REFERENCE))
def test_motion_workflow_keeps_the_reference_structure(name: str):
    ref_file, latent_id, (w, h) = MOTION_REFERENCE[name]
    ref = json.loads((REFERENCE / ref_file).read_text(encoding="utf-8"))
    ours = load(name).graph
    assert list(ours) == list(ref), "same node ids in the same order"
    for nid, ref_node in ref.items():
        node = ours[nid]
        assert node["class_type"] == ref_node["class_type"], nid
        ref_inputs, our_inputs = dict(ref_node["inputs"]), dict(node["inputs"])
        if nid == latent_id:  # only the size differs: portrait for short-form video
            assert (our_inputs.pop("width"), our_inputs.pop("height")) == (w, h)
            ref_inputs.pop("width"), ref_inputs.pop("height")
        if "filename_prefix" in ref_inputs:
            assert our_inputs.pop("filename_prefix").startswith(f"sceneforge/{name}/")
            ref_inputs.pop("filename_prefix")
        assert our_inputs == ref_inputs, nid


@pytest.mark.parametrize(
    ("name", "steps", "split", "cfg", "length", "fps"),
    [
        ("wan22-14b-i2v", 20, 10, 3.5, 81, 16.0),
        ("wan22-14b-i2v-4step", 4, 2, 1.0, 81, 16.0),
        ("wan22-5b-ti2v", 20, None, 5.0, 121, 24.0),
    ],
)
def test_motion_key_values(name: str, steps: int, split: int | None, cfg: float, length: int, fps: float):
    wf = load(name)
    g = wf.graph
    samplers = [n for n in g.values() if n["class_type"] in ("KSampler", "KSamplerAdvanced")]
    assert {n["inputs"]["steps"] for n in samplers} == {steps} and {n["inputs"]["cfg"] for n in samplers} == {cfg}
    assert wf.length() == length and wf.fps() == fps
    if split is not None:  # two-stage: high noise 0..split with leftover noise, low noise split..end
        high, low = g["86"]["inputs"], g["85"]["inputs"]
        assert (high["start_at_step"], high["end_at_step"], high["add_noise"], high["return_with_leftover_noise"]) == (0, split, "enable", "enable")
        assert (low["start_at_step"], low["end_at_step"], low["add_noise"], low["return_with_leftover_noise"]) == (split, steps, "disable", "disable")
        assert low["latent_image"] == ["86", 0] and high["model"] == ["104", 0] and low["model"] == ["103", 0]
        assert g["104"]["inputs"]["shift"] == g["103"]["inputs"]["shift"] == 5.0
    loras = [n["inputs"]["lora_name"] for n in g.values() if n["class_type"] == "LoraLoaderModelOnly"]
    assert len(loras) == (2 if name.endswith("4step") else 0)
    # PNG frames for the client: a SaveImage of the decoded frames, besides the video.
    decode = next(nid for nid, n in g.items() if n["class_type"] == "VAEDecode")
    frames = [n for n in g.values() if n["class_type"] == "SaveImage"]
    assert len(frames) == 1 and frames[0]["inputs"]["images"] == [decode, 0]
    assert sum(n["class_type"] == "SaveVideo" for n in g.values()) == 1


def test_image_workflows_key_values():
    for name, ckpt, size in (("sdxl", "sd_xl_base_1.0.safetensors", (768, 1344)), ("sd15", "v1-5-pruned-emaonly.safetensors", (512, 912))):
        g = load(name).graph
        assert [n["class_type"] for n in g.values()] == [
            "CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "CLIPTextEncode", "KSampler", "VAEDecode", "SaveImage"]
        assert g["4"]["inputs"]["ckpt_name"] == ckpt and (g["5"]["inputs"]["width"], g["5"]["inputs"]["height"]) == size
        assert size[0] % (64 if name == "sdxl" else 8) == 0 and size[1] % (64 if name == "sdxl" else 8) == 0
        assert abs(size[0] / size[1] - 9 / 16) < 0.02  # portrait, close to 9:16
    z = load("z-image-turbo").graph
    by_class = {n["class_type"]: n["inputs"] for n in z.values() if n["class_type"] != "CLIPTextEncode"}
    assert by_class["UNETLoader"]["unet_name"] == "z_image_turbo_bf16.safetensors"
    assert by_class["CLIPLoader"] == {"clip_name": "qwen_3_4b.safetensors", "type": "lumina2", "device": "default"}
    assert by_class["ModelSamplingAuraFlow"]["shift"] == 3.0
    assert (by_class["EmptySD3LatentImage"]["width"], by_class["EmptySD3LatentImage"]["height"]) == (720, 1280)
    k = by_class["KSampler"]
    assert (k["steps"], k["cfg"], k["sampler_name"], k["scheduler"]) == (9, 1.0, "euler", "simple")


@pytest.mark.parametrize(("name", "ref_file"), [("sdxl", "sdxl_t2i_api.json"), ("sd15", "sd15_t2i_api.json")])
def test_image_workflows_follow_the_reference_graph(name: str, ref_file: str):
    ref = json.loads((REFERENCE / ref_file).read_text(encoding="utf-8"))
    ours = load(name).graph
    assert sorted(ours) == sorted(ref)
    for nid, ref_node in ref.items():
        assert ours[nid]["class_type"] == ref_node["class_type"]
        links = {k: v for k, v in ref_node["inputs"].items() if is_link(v)}
        assert {k: v for k, v in ours[nid]["inputs"].items() if is_link(v)} == links, nid
    assert ours["4"]["inputs"] == ref["4"]["inputs"], "same checkpoint file"


def test_the_consistency_workflow_takes_a_reference_image():
    wf = load("flux-kontext")
    target = wf.reference_target()
    assert target is not None and target.class_type == "LoadImage" and target.title == "reference"
    g, _ = wf.prepare_image("the same woman in a cafe", seed=1, reference_name="sceneforge_abc.png")
    assert g[target.node_id]["inputs"]["image"] == "sceneforge_abc.png"
    assert validate_graph(g, object_info()) == []
    inspected = {(i.what, i.node_id) for i in wf.inspect(kind="image")}
    assert ("reference", target.node_id) in inspected
