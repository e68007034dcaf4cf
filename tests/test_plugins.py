"""Backends from other packages: an installed distribution declares entry points, sceneforge finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sceneforge.errors import ConfigError
from sceneforge.images.base import image_registry
from sceneforge.registry import Registry
from sceneforge.tts.base import tts_registry

PLUGIN = '''
"""A tiny third-party narration engine: writes a silent MP3 and one cue per scene."""
from sceneforge import SpeechRequest, SpeechResult, TTSBackend
from sceneforge.fsutil import atomic_path
from sceneforge.tts.base import Cue
from sceneforge.tts.mp3 import encode_mp3

class HumTTS(TTSBackend):
    """Says nothing, for exactly one second, in the voice it is given."""

    async def synthesize(self, request: SpeechRequest, report=None) -> SpeechResult:
        with atomic_path(request.dest) as tmp:
            tmp.write_bytes(encode_mp3(b"\\0\\0" * 24000, 24000))
        if report is not None:
            report("warning", message=f"hum voice {self.voice_for(request)}")
        return SpeechResult(duration=1.0, cues=[Cue(0.0, 1.0, request.text)])
'''


def install_plugin(site: Path) -> Path:
    """A distribution 'sceneforge-hum' as pip leaves it: the module and its .dist-info with entry points."""
    site.mkdir(parents=True)
    (site / "sceneforge_hum.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "sceneforge_hum-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sceneforge-hum\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sceneforge.tts]\nhum = sceneforge_hum:HumTTS\n")
    (info / "RECORD").write_text("")
    return site


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_plugin_is_found_by_name(plugin_site: Path):
    assert "hum" in tts_registry.names()
    cls = tts_registry.get("hum")
    assert cls.__name__ == "HumTTS" and cls.name == "hum"


def test_builtin_backends_come_through_the_same_entry_points():
    from importlib.metadata import entry_points

    assert {ep.name for ep in entry_points(group="sceneforge.tts")} >= {"espeak", "edge", "openai"}
    assert {ep.name for ep in entry_points(group="sceneforge.image")} >= {"comfyui", "storyboard"}
    assert {ep.name for ep in entry_points(group="sceneforge.motion")} >= {"wan", "kenburns"}
    assert image_registry.get("storyboard").__name__ == "StoryboardBackend"


def test_unknown_and_broken_backends_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ConfigError, match="unknown narration backend 'nope'; choose from .*espeak"):
        tts_registry.get("nope")
    reg: Registry[object] = Registry("narration", "sceneforge.test-none", {"gone": "no_such_module:Thing"})
    with pytest.raises(ConfigError, match="'gone' .*cannot be loaded"):
        reg.get("gone")


def test_a_plugin_runs_from_the_command_line(tmp_path: Path):
    """A real process, as a user with the plugin installed would run it."""
    site = install_plugin(tmp_path / "site")
    scenes = tmp_path / "s.json"
    scenes.write_text(json.dumps({"topic": "hum", "scenes": [{"script": "one", "image_prompt": "a", "voice": "low"}]}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-m", "sceneforge", "run", str(scenes), "--tts", "hum", "--stages", "audio",
                        "--out", str(tmp_path / "out"), "--events", str(tmp_path / "ev.jsonl")],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert p.returncode == 0, p.stderr
    state = json.loads((tmp_path / "out" / "hum" / "scenes.json").read_text())
    assert state["scenes"][0]["audio_duration"] == 1.0
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    warn = [e for e in events if e["kind"] == "warning"]
    assert warn and warn[0]["data"]["message"] == "hum voice low" and warn[0]["scene"] == 1
