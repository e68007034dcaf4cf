"""Input that got past validation before issue #11 (item 9): huge numbers, deep nesting,
invisible-only text, lone surrogates, seeds beyond what a server accepts.

Each is refused before any work, naming the file or the scene and the field; the CLI
paths are also in the bad-input catalogue (``tests/data/bad``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sceneforge.cli import app
from sceneforge.config import MAX_SEED, Settings, load_settings
from sceneforge.errors import ConfigError, SceneValidationError
from sceneforge.input_checks import MAX_NESTING, has_visible_text, json_problem
from sceneforge.pipeline import generate_assets
from sceneforge.scenes import load_scene_file, parse_state

runner = CliRunner()
OK = {"script": "Hello.", "image_prompt": "a sunrise"}


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def problems(state: Any) -> list[str]:
    with pytest.raises(SceneValidationError) as info:
        parse_state(state, default_topic="t")
    return info.value.problems


# --------------------------------------------------------------------------- invisible text
INVISIBLE = {
    "zero-width space": "\u200b", "zero-width non-joiner": "\u200c", "zero-width joiner": "\u200d",
    "BOM": "\ufeff", "word joiner": "\u2060", "soft hyphen": "\u00ad", "left-to-right mark": "\u200e",
    "no-break space": "\u00a0", "ideographic space": "\u3000", "line separator": "\u2028",
    "control": "\x07", "tag": "\U000e0041", "variation selector": "\ufe0f", "combining grapheme joiner": "\u034f",
    "hangul filler": "\u3164", "hangul jungseong filler": "\u1160", "braille blank": "\u2800",
    "mongolian vowel separator": "\u180e",
}


@pytest.mark.parametrize("name", sorted(INVISIBLE))
def test_each_invisible_character_alone_and_with_whitespace_is_empty(name: str) -> None:
    ch = INVISIBLE[name]
    for text in (ch, ch * 3, f" {ch}\n{ch}\t"):
        assert not has_visible_text(text)
        # (Unicode spaces are already whitespace to str.strip: those say just "is empty".)
        [line] = problems([OK, {"script": text, "image_prompt": "x"}])
        assert line in ("scene 2: script is empty", "scene 2: script is empty (it has only invisible characters)")


def test_all_of_them_together_in_every_text_field() -> None:
    blank = "".join(INVISIBLE.values()) + " \n"
    p = problems([{"script": blank, "image_prompt": blank, "motion_prompt": blank}])
    assert [line.split(" (")[0] for line in p] == [
        "scene 1: script is empty", "scene 1: image_prompt is empty", "scene 1: motion_prompt is empty"]


@pytest.mark.parametrize("text", ["\u200b안녕\u200b", "a\u00ad", "\ufeffHello", "…", "3", "😀", "\ue000", "é"])
def test_text_with_one_visible_character_is_kept_as_written(text: str) -> None:
    assert has_visible_text(text)
    sf = parse_state([{"script": text, "image_prompt": text}], default_topic="t")
    assert sf.scenes[0].script == text  # nothing is stripped or rewritten


# --------------------------------------------------------------------------- unwritable values
def test_lone_surrogates_are_refused_by_field() -> None:
    p = problems([{**OK, "script": "Hi \ud800 there"}, {**OK, "note": ["ok", {"k": "\udc00"}]}, {**OK, "\udfff": 1}])
    assert p == [
        "scene 1: script contains an unpaired surrogate \\ud800 (not valid Unicode)",
        "scene 2: field 'note' contains an unpaired surrogate \\udc00 (not valid Unicode)",
        "scene 3: field name '\\udfff' contains an unpaired surrogate \\udfff (not valid Unicode)",
    ]


def test_library_state_with_a_huge_int_or_deep_nesting_names_the_scene_and_field() -> None:
    limit = sys.get_int_max_str_digits()
    p = problems({"topic": "t", "scenes": [OK, {**OK, "views": 10**5000}, {**OK, "layers": deep(100_000)}]})
    assert p == [
        f"scene 2: field 'views' holds a number with more than {limit} digits",
        f"scene 3: field 'layers' is nested more than {MAX_NESTING} levels deep",
    ]
    # Just inside the limits: accepted, and written back exactly.
    near = {**OK, "views": 10**(limit - 1), "layers": deep(MAX_NESTING)}
    sf = parse_state({"topic": "t", "scenes": [near]})
    assert json.loads(json.dumps(sf.state()))["scenes"][0] == near


def test_top_level_fields_must_be_writable_too() -> None:
    assert problems({"topic": "t", "scenes": [OK], "meta": {"n": 10**5000}}) == [
        "state: field 'meta' holds a number with more than 4300 digits"]
    assert problems({"topic": "t", "scenes": [OK], "tags": {"a", "b"}})[0].startswith(
        "state: field 'tags' cannot be written to scenes.json")


def test_objects_json_lacks_are_refused_by_scene() -> None:
    p = problems([OK, {**OK, "callback": object()}, {**OK, 7: "seven"}])
    assert p[0] == "scene 3: field names must be strings, got int 7"
    p = problems([OK, {**OK, "callback": object()}])
    assert p[0].startswith("scene 2: cannot be written to scenes.json")


def test_json_problem_walks_without_recursion() -> None:
    assert json_problem(deep(1_000_000)) == f"is nested more than {MAX_NESTING} levels deep"
    assert json_problem({"a": [1, 2.5, None, True, "x", {"b": (1, 2)}]}) is None
    assert json_problem(-(10**5000)).startswith("holds a number")


def test_generate_assets_refuses_before_writing_anything(tmp_path: Path) -> None:
    state = {"topic": "t", "scenes": [{**OK, "views": 10**5000}]}
    with pytest.raises(ValueError, match="scene 1: field 'views' holds a number"):
        generate_assets(state, Settings(offline=True, out_dir=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_files_with_a_huge_number_or_deep_nesting_name_the_file(tmp_path: Path) -> None:
    cases = {
        "num.json": '{"scenes": [{"script": "a", "image_prompt": "b", "n": ' + "1" * 4301 + "}]}",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "meta.json": '{"meta": ' + "[" * 300 + "]" * 300 + ', "scenes": [{"script": "a", "image_prompt": "b"}]}',
    }
    seen = {}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SceneValidationError) as info:
            load_scene_file(tmp_path / name)
        seen[name] = str(info.value)
    assert seen == {
        "num.json": f"{tmp_path / 'num.json'}: not usable JSON: a number has more than 4300 digits",
        "deep.json": f"{tmp_path / 'deep.json'}: not usable JSON: arrays or objects are nested too deeply",
        "meta.json": f"{tmp_path / 'meta.json'}: field 'meta' is nested more than {MAX_NESTING} levels deep",
    }


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("field", ["seed", "motion_seed"])
def test_seed_limit_is_comfyuis(field: str) -> None:
    assert MAX_SEED == 2**64 - 1
    assert getattr(load_settings({field: MAX_SEED}, env={}), field) == MAX_SEED
    with pytest.raises(ConfigError) as info:
        load_settings({field: MAX_SEED + 1}, env={})
    assert str(info.value) == (
        f"setting {field}: must be at most 2**64 - 1 = 18446744073709551615, the largest seed ComfyUI accepts")
    with pytest.raises(ConfigError, match=f"setting {field}: must be at most"):
        load_settings(env={f"SCENEFORGE_{field.upper()}": str(2**70)})


@pytest.mark.parametrize("flag", ["--seed", "--motion-seed"])
def test_cli_refuses_a_big_seed_offline_before_writing(tmp_path: Path, flag: str) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"topic": "t", "scenes": [OK]}))
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(f), "--offline", "--motion", flag, str(2**64), "--out", str(out)],
                      catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "18446744073709551615" in r.output and flag.lstrip("-").replace("-", "_") in r.output
    assert "Traceback" not in r.output
    assert not out.exists()
