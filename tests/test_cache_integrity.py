"""The cache catches damaged assets: size, then mtime/ctime with a sha256 fallback (issue #11, item 5).

Unit tests on :class:`StageCache` with real files, then two runs end to end: the
library offline, and the CLI against the fake ComfyUI server.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import sceneforge.cache as cache_mod
from fakes.comfy_server import FakeComfyServer
from sceneforge.cache import StageCache
from sceneforge.cli import app
from sceneforge.config import Settings
from sceneforge.events import Event
from sceneforge.layout import TopicLayout
from sceneforge.pipeline import generate_assets

FP = "f" * 64


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "PNG", compress_level=0)  # no compression: same size for any colour
    return buf.getvalue()


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def __call__(self, msg: str) -> None:
        self.warnings.append(msg)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the cache hashes (the slow path), by name."""
    seen: list[str] = []
    real = cache_mod._sha256

    def counting(path):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(cache_mod, "_sha256", counting)
    cache_mod._digest.cache_clear()
    return seen


def make_topic(root_dir: Path) -> tuple[TopicLayout, list[Path]]:
    lay = TopicLayout(root_dir, "topic")
    lay.root.mkdir(parents=True)
    image = lay.image_path(2)
    image.write_bytes(png((10, 20, 30)))
    frames = []
    lay.motion_dir(2).mkdir()
    for i in range(1, 4):
        f = lay.motion_dir(2) / f"frame_{i:04d}.png"
        f.write_bytes(png((i, i, i)))
        frames.append(f)
    return lay, [image, *frames]


@pytest.fixture
def topic(tmp_path: Path) -> tuple[StageCache, Recorder, list[Path]]:
    lay, files = make_topic(tmp_path / "out")
    rec = Recorder()
    cache = StageCache(lay, warn=rec)
    cache.record("image", 2, FP, files[:1], {"image_seed": 7})
    cache.record("motion", 2, FP, files[1:], {"motion_fps": 16})
    return cache, rec, files


def zero_in_place(path: Path, *, keep_mtime: bool) -> None:
    st = path.stat()
    with open(path, "r+b") as fh:  # same inode, same size
        fh.write(b"\0" * st.st_size)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_mtime_ns == st.st_mtime_ns


def test_record_holds_size_times_and_hash(topic, tmp_path: Path) -> None:
    cache, _, files = topic
    rec = json.loads((cache.layout.state_dir / "image" / "scene_2.json").read_text())
    st = files[0].stat()
    import hashlib

    assert rec["version"] == 2
    assert rec["files"] == {"image_scene_2.png": {
        "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
        "sha256": hashlib.sha256(files[0].read_bytes()).hexdigest(),
    }}
    assert rec["fields"] == {"image_seed": 7}


def test_unchanged_files_are_accepted_without_reading_them(topic, hashes) -> None:
    cache, rec, files = topic
    hit = cache.lookup("motion", 2, FP)
    assert hit is not None and hit.files == files[1:] and hit.fields == {"motion_fps": 16}
    assert cache.lookup("image", 2, FP) is not None
    assert hashes == [] and rec.warnings == []
    assert cache.lookup("image", 2, "0" * 64) is None  # another fingerprint


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime-moved", "mtime-restored"])
def test_image_zeroed_in_place_is_not_cached(topic, keep_mtime: bool) -> None:
    cache, rec, files = topic
    zero_in_place(files[0], keep_mtime=keep_mtime)
    assert cache.lookup("image", 2, FP) is None
    assert len(rec.warnings) == 1 and "image_scene_2.png changed on disk" in rec.warnings[0]
    assert "scene 2" in rec.warnings[0]
    assert cache.lookup("motion", 2, FP) is not None  # the other record is not affected


def test_truncated_frame_is_not_cached(topic) -> None:
    cache, rec, files = topic
    with open(files[2], "r+b") as fh:
        fh.truncate(files[2].stat().st_size // 2)
    assert cache.lookup("motion", 2, FP) is None
    assert "frame_0002.png" in rec.warnings[0]


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["mtime-moved", "mtime-restored"])
def test_frame_replaced_by_another_valid_png_is_not_cached(topic, keep_mtime: bool) -> None:
    cache, rec, files = topic
    other = png((200, 100, 50))
    assert len(other) == files[3].stat().st_size  # same size: only the content tells
    st = files[3].stat()
    tmp = files[3].with_name("other.png")
    tmp.write_bytes(other)
    os.replace(tmp, files[3])
    if keep_mtime:
        os.utime(files[3], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.lookup("motion", 2, FP) is None
    assert "frame_0003.png" in rec.warnings[0]


def test_deleted_file_is_a_quiet_miss(topic) -> None:
    cache, rec, files = topic
    files[1].unlink()
    assert cache.lookup("motion", 2, FP) is None
    assert rec.warnings == []


@pytest.mark.parametrize("copy", [shutil.copy2, shutil.copy], ids=["copy2-keeps-mtime", "copy-new-mtime"])
def test_copied_topic_folder_is_still_cached_and_hashed_once(topic, tmp_path: Path, hashes, copy) -> None:
    cache, _, files = topic
    dest_out = tmp_path / "elsewhere"
    shutil.copytree(cache.layout.root, dest_out / "topic", copy_function=copy)
    moved = StageCache(TopicLayout(dest_out, "topic"), warn=Recorder())
    hit = moved.lookup("motion", 2, FP)
    assert hit is not None and [p.name for p in hit.files] == [f.name for f in files[1:]]
    assert sorted(hashes) == sorted(f.name for f in files[1:])  # times moved: hashed, hashes match
    # The record now holds the copy's times: the next lookup is a stat again.
    hashes.clear()
    assert moved.lookup("motion", 2, FP) is not None
    assert hashes == []
    assert cache.lookup("motion", 2, FP) is not None  # the original is untouched


def test_touched_file_is_hashed_once_then_fast(topic, hashes) -> None:
    cache, rec, files = topic
    os.utime(files[0], ns=(1_000_000_000, 1_000_000_000))
    assert cache.lookup("image", 2, FP) is not None
    assert hashes == ["image_scene_2.png"]
    assert cache.lookup("image", 2, FP) is not None
    assert hashes == ["image_scene_2.png"] and rec.warnings == []


def test_refresh_that_cannot_be_written_still_hits(topic, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, _, files = topic
    os.utime(files[0], ns=(1_000_000_000, 1_000_000_000))

    def read_only(*a, **kw):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "read-only")

    monkeypatch.setattr(cache_mod, "atomic_write_json", read_only)
    assert cache.lookup("image", 2, FP) is not None


def write_v1(cache: StageCache, stage: str, files: list[Path]) -> Path:
    path = cache.layout.state_dir / stage / "scene_2.json"
    sizes = {f.relative_to(cache.layout.root).as_posix(): f.stat().st_size for f in files}
    path.write_text(json.dumps({"version": 1, "fingerprint": FP, "files": sizes, "fields": {"motion_fps": 8}}))
    return path


def test_version_1_record_is_upgraded_by_hashing_once(topic, hashes) -> None:
    cache, rec, files = topic
    path = write_v1(cache, "motion", files[1:])
    hit = cache.lookup("motion", 2, FP)
    assert hit is not None and hit.fields == {"motion_fps": 8}
    upgraded = json.loads(path.read_text())
    assert upgraded["version"] == 2 and set(upgraded["files"]["motion_scene_2/frame_0001.png"]) == {
        "size", "mtime_ns", "ctime_ns", "sha256"}
    assert len(hashes) == 3
    hashes.clear()
    assert cache.lookup("motion", 2, FP) is not None and hashes == []
    assert rec.warnings == []


def test_version_1_record_with_a_zeroed_png_is_not_upgraded(topic) -> None:
    cache, rec, files = topic
    path = write_v1(cache, "image", files[:1])
    zero_in_place(files[0], keep_mtime=True)
    assert cache.lookup("image", 2, FP) is None
    assert "image_scene_2.png changed on disk" in rec.warnings[0]
    assert json.loads(path.read_text())["version"] == 1  # not blessed


@pytest.mark.parametrize("entry", [{"size": 5}, {"size": "5", "mtime_ns": 1, "ctime_ns": 1, "sha256": "x"}, 17])
def test_malformed_version_2_entry_is_corrupt(topic, entry) -> None:
    cache, rec, _ = topic
    path = cache.layout.state_dir / "image" / "scene_2.json"
    path.write_text(json.dumps({"version": 2, "fingerprint": FP, "files": {"image_scene_2.png": entry}}))
    assert cache.lookup("image", 2, FP) is None
    assert "corrupt" in rec.warnings[0]


# --------------------------------------------------------------------------- end to end
STATE = {"topic": "damage", "scenes": [
    {"script": "One.", "image_prompt": "a lighthouse"},
    {"script": "Two.", "image_prompt": "a fishing boat"},
]}


def mtimes(root: Path, pattern: str) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.glob(pattern))}


def test_library_offline_remakes_a_damaged_image_and_leaves_scene_1(tmp_path: Path) -> None:
    settings = Settings(offline=True, motion_enabled=True, out_dir=tmp_path / "out", stages=("image", "motion"))
    generate_assets(STATE, settings)
    root = tmp_path / "out" / "damage"
    image2 = root / "image_scene_2.png"
    good = image2.read_bytes()
    before1 = mtimes(root, "*scene_1*") | mtimes(root, "motion_scene_1/*")
    before2 = mtimes(root, "motion_scene_2/*")
    zero_in_place(image2, keep_mtime=True)  # the worst case: size and mtime as recorded

    events: list[Event] = []
    state = generate_assets(STATE, settings, on_event=events.append)
    assert image2.read_bytes() == good  # remade (storyboard cards are deterministic), not reused
    with Image.open(image2) as im:
        im.load()
    warned = [e.data["message"] for e in events if e.kind == "warning"]
    assert len(warned) == 1 and "image_scene_2.png changed on disk" in warned[0]
    cached = {(e.stage, e.scene) for e in events if e.kind == "scene_cached"}
    assert ("image", 1) in cached and ("image", 2) not in cached
    # The motion frames were made from exactly these bytes (the motion cache key is the image's
    # sha256), so they stay valid; with a server, a new seed gives a new image and new motion (below).
    assert ("motion", 2) in cached and mtimes(root, "motion_scene_2/*") == before2
    assert mtimes(root, "*scene_1*") | mtimes(root, "motion_scene_1/*") == before1
    assert state["scenes"][1]["image_path"] == str(image2)


def test_cli_with_a_server_remakes_a_damaged_image_and_its_motion(tmp_path: Path) -> None:
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps(STATE), encoding="utf-8")
    out = tmp_path / "out"
    root = out / "damage"
    args = ["run", str(f), "--stages", "image,motion", "--motion", "--motion-length", "5",
            "--width", "64", "--height", "64", "--out", str(out)]
    with FakeComfyServer() as srv:
        srv.accept_any_model = True
        r = runner.invoke(app, [*args, "--comfy-url", srv.url], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        before1 = mtimes(root, "image_scene_1.png") | mtimes(root, "motion_scene_1/*")
        before2 = mtimes(root, "image_scene_2.png") | mtimes(root, "motion_scene_2/*")
        frames2 = {p.name: p.read_bytes() for p in (root / "motion_scene_2").iterdir()}
        zero_in_place(root / "image_scene_2.png", keep_mtime=True)
        first_run_jobs = len(srv.prompts)
        events = tmp_path / "events.jsonl"
        r = runner.invoke(app, [*args, "--comfy-url", srv.url, "--events", str(events)], catch_exceptions=False)
        second = srv.prompts[first_run_jobs:]
    assert r.exit_code == 0, r.output
    warned = [e["data"]["message"] for e in map(json.loads, events.read_text().splitlines()) if e["kind"] == "warning"]
    assert len(warned) == 1 and "image_scene_2.png changed on disk" in warned[0]
    # Exactly one image job and one motion job, both for scene 2.
    kinds = sorted("motion" if any(n["class_type"] == "LoadImage" for n in p["prompt"].values()) else "image"
                   for p in second)
    assert kinds == ["image", "motion"]
    after2 = mtimes(root, "image_scene_2.png") | mtimes(root, "motion_scene_2/*")
    assert set(after2) == set(before2) and all(after2[k] != before2[k] for k in after2)
    assert {p.name: p.read_bytes() for p in (root / "motion_scene_2").iterdir()} != frames2
    with Image.open(root / "image_scene_2.png") as im:
        im.load()
    assert mtimes(root, "image_scene_1.png") | mtimes(root, "motion_scene_1/*") == before1


runner = CliRunner()


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "motion_scene_2/../../x.png", "\\\\server\\x.png",
                                  "C:/x.png"])
def test_a_record_naming_a_file_outside_the_topic_is_ignored(topic, name: str) -> None:
    cache, rec, _ = topic
    path = cache.layout.state_dir / "image" / "scene_2.json"
    record = json.loads(path.read_text())
    record["files"] = {name: next(iter(record["files"].values()))}
    path.write_text(json.dumps(record))
    assert cache.lookup("image", 2, FP) is None
    assert any("outside the topic folder" in w for w in rec.warnings)
    assert cache.meta("image", 2) == {}  # how it was made is still readable; its files are not trusted


def test_meta_is_read_without_checking_files(topic) -> None:
    cache, _, files = topic
    cache.record("motion", 2, FP, files[1:], {"motion_seed": 5}, {"inputs": {"motion_seed": 5}})
    files[1].unlink()
    assert cache.current("motion", 2) is None and cache.meta("motion", 2) == {"inputs": {"motion_seed": 5}}
    assert cache.meta("audio", 2) is None
