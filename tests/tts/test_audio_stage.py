"""The narration stage: per-scene cache, per-scene retry, SRT, atomic results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakes.backends import FakeTTS
from sceneforge.errors import AssetMissingError, TransientError, error_text, scene_of
from sceneforge.events import Event
from sceneforge.pipeline.nodes import aaudio_generator, audio_generator

STATE = {
    "topic": "demo",
    "scenes": [
        {"script": "one", "image_prompt": "p1", "audio_path": ""},
        {"script": "two", "image_prompt": "p2", "audio_path": "", "keep": {"me": 1}},
        {"script": "three", "image_prompt": "p3"},
    ],
}


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}


async def test_generates_every_scene(settings_factory, sleeps):
    s = settings_factory()
    out = await aaudio_generator(STATE, s, sleep=sleeps)
    root = s.out_dir / "demo"
    for n, sc in enumerate(out["scenes"], 1):
        assert sc["audio_path"] == str(root / f"audio_scene_{n}.mp3")
        assert Path(sc["audio_path"]).stat().st_size > 0
        assert sc["audio_duration"] > 0
        assert Path(sc["subtitle_path"]).read_text().startswith("1\n00:00:00,000 --> ")
    assert out["scenes"][1]["keep"] == {"me": 1}
    assert STATE["scenes"][0]["audio_path"] == ""  # the input is not mutated


async def test_unchanged_rerun_rewrites_nothing(settings_factory, sleeps):
    s = settings_factory()
    await aaudio_generator(STATE, s, sleep=sleeps)
    before = mtimes(s.out_dir / "demo")
    FakeTTS.reset()
    events: list[Event] = []
    out = await aaudio_generator(STATE, s, on_event=events.append, sleep=sleeps)
    assert sum(FakeTTS.calls.values()) == 0
    assert mtimes(s.out_dir / "demo") == before
    assert [e.scene for e in events if e.kind == "scene_cached"] == [1, 2, 3]
    assert out["scenes"][0]["audio_duration"] == pytest.approx(0.3)


async def test_editing_scene_2_regenerates_only_scene_2(settings_factory, sleeps):
    s = settings_factory()
    await aaudio_generator(STATE, s, sleep=sleeps)
    before = mtimes(s.out_dir / "demo")
    FakeTTS.reset()
    edited = json.loads(json.dumps(STATE))
    edited["scenes"][1]["script"] = "two, edited"
    await aaudio_generator(edited, s, sleep=sleeps)
    assert dict(FakeTTS.calls) == {"two, edited": 1}
    after = mtimes(s.out_dir / "demo")
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"audio_scene_2.mp3", "audio_scene_2.srt", "scenes.json"}  # the state names the new script


async def test_voice_change_is_a_miss(settings_factory, sleeps):
    await aaudio_generator(STATE, settings_factory(), sleep=sleeps)
    FakeTTS.reset()
    await aaudio_generator(STATE, settings_factory(voice="other"), sleep=sleeps)
    assert sum(FakeTTS.calls.values()) == 3


async def test_truncated_file_is_not_trusted(settings_factory, sleeps):
    s = settings_factory()
    await aaudio_generator(STATE, s, sleep=sleeps)
    f = s.out_dir / "demo" / "audio_scene_3.mp3"
    f.write_bytes(f.read_bytes()[:5])  # a half-written file from some other tool
    FakeTTS.reset()
    await aaudio_generator(STATE, s, sleep=sleeps)
    assert dict(FakeTTS.calls) == {"three": 1}
    assert f.stat().st_size > 5


async def test_corrupt_cache_record_is_a_warning_and_rebuild(settings_factory, sleeps):
    s = settings_factory()
    await aaudio_generator(STATE, s, sleep=sleeps)
    (s.out_dir / "demo" / ".sceneforge" / "audio" / "scene_1.json").write_text("{garbage")
    FakeTTS.reset()
    events: list[Event] = []
    await aaudio_generator(STATE, s, on_event=events.append, sleep=sleeps)
    assert dict(FakeTTS.calls) == {"one": 1}
    assert any(e.kind == "warning" and "corrupt" in e.data["message"] for e in events)


async def test_retry_waits_and_per_scene(settings_factory, sleeps):
    FakeTTS.fail_times = {"two": 2}
    events: list[Event] = []
    out = await aaudio_generator(STATE, settings_factory(), on_event=events.append, sleep=sleeps)
    assert sleeps.waits == [1.0, 2.0]
    assert FakeTTS.calls == {"one": 1, "two": 3, "three": 1}
    assert [(e.scene, e.data["attempt"]) for e in events if e.kind == "scene_retried"] == [(2, 1), (2, 2)]
    assert out["scenes"][1]["audio_path"].endswith("audio_scene_2.mp3")


async def test_failure_after_retries_keeps_others(settings_factory, sleeps):
    s = settings_factory()
    FakeTTS.fail_times = {"two": 5}
    events: list[Event] = []
    with pytest.raises(TransientError) as ei:
        await aaudio_generator(STATE, s, on_event=events.append, sleep=sleeps)
    assert error_text(ei.value).startswith("scene 2 (audio): ") and scene_of(ei.value) == (2, "audio")
    assert sleeps.waits == [1.0, 2.0]
    failed = [e for e in events if e.kind == "scene_failed"]
    assert [(e.scene, e.stage) for e in failed] == [(2, "audio")]
    root = s.out_dir / "demo"
    assert (root / "audio_scene_1.mp3").exists() and (root / "audio_scene_3.mp3").exists()
    assert not (root / "audio_scene_2.mp3").exists()
    # a re-run does only the failed scene
    FakeTTS.reset()
    await aaudio_generator(STATE, s, sleep=sleeps)
    assert dict(FakeTTS.calls) == {"two": 1}


async def test_missing_file_is_file_not_found(settings_factory, sleeps):
    FakeTTS.write_nothing = {"three"}
    with pytest.raises(FileNotFoundError) as ei:
        await aaudio_generator(STATE, settings_factory(), sleep=sleeps)
    assert isinstance(ei.value, AssetMissingError)
    assert "scene 3" in error_text(ei.value)
    assert sleeps.waits == [1.0, 2.0]


async def test_force_one_scene(settings_factory, sleeps):
    await aaudio_generator(STATE, settings_factory(), sleep=sleeps)
    FakeTTS.reset()
    await aaudio_generator(STATE, settings_factory(force=True, only_scenes=frozenset({2})), sleep=sleeps)
    assert dict(FakeTTS.calls) == {"two": 1}


def test_sync_node_function(settings_factory):
    out = audio_generator(STATE, settings_factory())
    assert all(Path(s["audio_path"]).exists() for s in out["scenes"])


async def test_empty_script_is_value_error_and_writes_nothing(settings_factory, sleeps):
    s = settings_factory()
    bad = {"topic": "demo", "scenes": [{"script": "ok"}, {"script": " "}]}
    with pytest.raises(ValueError, match="scene 2: script is empty"):
        await aaudio_generator(bad, s, sleep=sleeps)
    assert not s.out_dir.exists()
    assert sum(FakeTTS.calls.values()) == 0


async def test_interrupted_write_leaves_nothing_trusted(settings_factory, sleeps, monkeypatch):
    """A crash in the middle of writing leaves only a .part temp, which the next run removes."""
    s = settings_factory()
    real_replace = os.replace

    class Killed(BaseException):
        pass

    def boom(src, dst):  # the process "dies" just before the rename
        if str(dst).endswith("audio_scene_2.mp3"):
            raise Killed
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Killed):
        await aaudio_generator(STATE, s, sleep=sleeps)
    monkeypatch.setattr(os, "replace", real_replace)
    root = s.out_dir / "demo"
    assert not (root / "audio_scene_2.mp3").exists()
    # simulate the leftover of a SIGKILL: a partial temp file
    (root / ".audio_scene_2.mp3.dead.part").write_bytes(b"MP")
    FakeTTS.reset()
    await aaudio_generator(STATE, s, sleep=sleeps)
    assert FakeTTS.calls["two"] == 1
    assert (root / "audio_scene_2.mp3").stat().st_size > 2


def test_file_digest_is_read_once_and_follows_changes(tmp_path: Path, monkeypatch):
    import builtins

    from sceneforge.cache import file_digest

    f = tmp_path / "img.png"
    f.write_bytes(b"one")
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", counting_open)
    first = file_digest(f)
    assert file_digest(f) == first and opened.count(str(f.resolve())) == 1
    f.write_bytes(b"two, longer")
    assert file_digest(f) != first


async def test_word_timings_are_kept_beside_the_narration_and_dropped_with_it(settings_factory, sleeps):
    from sceneforge.tts.base import Cue
    from sceneforge.tts.words import read_words

    s = settings_factory()
    state = {"topic": "demo", "scenes": [{"script": "two words", "image_prompt": "p"}]}
    FakeTTS.with_words = {"two words"}
    await aaudio_generator(state, s, sleep=sleeps)
    root = s.out_dir / "demo"
    assert read_words(root / "audio_scene_1.mp3") == [Cue(0.0, 0.08, "two"), Cue(0.1, 0.18, "words")]
    FakeTTS.reset()
    await aaudio_generator(state, s, sleep=sleeps)  # cached: the sidecar is part of the record
    assert sum(FakeTTS.calls.values()) == 0 and (root / "audio_scene_1.words.json").is_file()
    edited = {"topic": "demo", "scenes": [{"script": "no timings now", "image_prompt": "p"}]}
    await aaudio_generator(edited, s, sleep=sleeps)  # an engine result without word timings
    assert not (root / "audio_scene_1.words.json").exists()


async def test_a_narration_with_word_timings_is_hashed_once(settings_factory, sleeps, monkeypatch):
    """Its sidecar's audio_sha256 and its cache record share one digest (the cache's memo)."""
    import hashlib

    import sceneforge.cache as cache

    made: list = []
    sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: made.append(sha256(*a)) or made[-1])
    cache._digest.cache_clear()
    s = settings_factory()
    FakeTTS.with_words = {"two words"}
    await aaudio_generator({"topic": "hashed", "scenes": [{"script": "two words", "image_prompt": "p"}]}, s,
                           sleep=sleeps)
    mp3 = sha256((s.out_dir / "hashed" / "audio_scene_1.mp3").read_bytes()).hexdigest()
    assert [h.hexdigest() for h in made].count(mp3) == 1
