"""Everything the final cut is made from, found and checked before any work starts.

A topic with missing assets gets one :class:`~sceneforge.errors.InputFileMissingError`
listing every scene with the stage to run again; an unreadable music file gets
a :class:`~sceneforge.errors.InputFileMissingError` (missing) or
:class:`~sceneforge.errors.ConfigError` (not audio) naming it. Scene files are
found with the preview's rules (:mod:`sceneforge.preview.assets`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AssetMissingError, ConfigError, InputFileMissingError, SceneValidationError
from ..media import NotAnImage, ffmpeg_exe, open_bounded
from ..preview.assets import RUN_HINT, ResolvedScene, load_scene_file, resolve_scene
from ..preview.subtitles import parse_srt
from ..tts.base import Cue
from ..tts.words import read_words

__all__ = ["SceneInput", "TopicInput", "encoder_lead", "load_topic", "check_music", "picture"]

#: LAME's start delay in samples (576 encoder + 529 decoder), in every MP3 it writes.
LAME_DELAY = 1105

#: The stage that makes each scene field (named in errors: the stage to run again).
_STAGE_OF = {"audio_path": "audio", "image_path": "image", "motion_frames_path": "motion"}


@dataclass
class SceneInput:
    """One scene ready to compose: its files, narration length and timed text."""

    scene: ResolvedScene
    duration: float
    lines: list[Cue]  # from the SRT; empty when the engine gave none
    words: list[Cue] | None  # from the words sidecar, when present and made for this audio
    picture_size: tuple[int, int]  # of its picture (its image, else its first frame), read when it was checked
    lead: float = 0.0  # seconds of encoder delay at the start of the decoded narration, skipped

    @property
    def number(self) -> int:
        return self.scene.number


@dataclass
class TopicInput:
    """A topic's title and scenes, in scene order."""

    folder: Path
    title: str
    scenes: list[SceneInput]


def _stage_note(message: str) -> str:
    """``message`` with the stage that makes the field it names, when it does not say already."""
    if "stage)" in message:
        return message
    for name, stage in _STAGE_OF.items():
        if f" {name} " in message or message.startswith(f"{name} "):
            return f"{message} ({stage} stage)"
    return message


def picture(sc: ResolvedScene) -> Path:
    """The scene's picture: its image, else its first motion frame (what the cover shows)."""
    return sc.image or sc.frames[0]  # resolve_scene found one of them


def _check_image(sc: ResolvedScene) -> tuple[int, int]:
    """The size of the scene's picture, checked to be a whole image (within the pixel cap)."""
    path = picture(sc)
    field = "image_path" if sc.image else "motion_frames_path"
    try:
        with open_bounded(path) as im:
            size = im.size
            im.verify()
    except (OSError, ValueError) as exc:
        why = exc.cause if isinstance(exc, NotAnImage) else exc
        raise AssetMissingError(f"scene {sc.number}: {field} {path} is not a readable image ({why}); regenerate it "
                                f"({_STAGE_OF[field]} stage)") from None
    return size


def _scene_input(n: int, raw: dict[str, Any], folder: Path) -> SceneInput:
    sc = resolve_scene(n, raw, folder, need_audio=True)
    size = _check_image(sc)
    if sc.duration is None:
        raise AssetMissingError(f"scene {n}: cannot read the duration of audio_path {sc.audio}; {RUN_HINT} (audio stage)")
    lines: list[Cue] = []
    if sc.subtitle is not None:
        text = sc.subtitle.read_text(encoding="utf-8", errors="replace")
        lines = [Cue(a, b, t) for a, b, t in parse_srt(text)]
    words = read_words(sc.audio) if sc.audio is not None else None
    lead = encoder_lead(sc.audio, sc.duration) if sc.audio is not None else 0.0
    return SceneInput(sc, sc.duration, lines, words, size, lead)


def encoder_lead(audio: Path, duration: float) -> float:
    """Seconds of LAME start delay a decoder will *not* skip in ``audio``, else 0.

    An MP3 written by a streaming LAME (``lameenc``: sceneforge's espeak
    narration) has no Xing/LAME header telling decoders its delay, so its sound
    starts 1105 samples late while its SRT counts from the first sample of the
    speech. Such a file is recognised by the engine's recorded, PCM-exact
    duration being shorter than the file by at least that delay. Files with a
    header (decoders skip the delay themselves) or whose recorded duration is the
    file's (edge-tts, OpenAI-compatible servers) are left alone.
    """
    if audio.suffix.lower() != ".mp3":
        return 0.0
    try:
        from mutagen.mp3 import MP3

        info = MP3(str(audio)).info
        with audio.open("rb") as f:
            head = f.read(8192)
    except Exception:  # noqa: BLE001 - not a readable MP3: ffmpeg reports it properly later
        return 0.0
    # A Xing/Info header lives in the first frame; LAME's "LAME3.100" fill text is in every frame's padding.
    if info is None or b"Xing" in head or b"Info" in head:
        return 0.0
    lead = LAME_DELAY / info.sample_rate
    return lead if info.length - duration >= lead - 1e-3 else 0.0


def _title(data: Any, folder: Path) -> str:
    if isinstance(data, dict):
        for key in ("title", "topic"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
    return folder.name


def load_topic(folder: Path | str, title: str | None = None) -> TopicInput:
    """Every scene of ``folder`` with its files; all problems at once, each naming its scene and stage."""
    folder = Path(folder)
    data, raw = load_scene_file(folder)
    scenes: list[SceneInput] = []
    problems: list[str] = []
    for n, item in enumerate(raw, 1):
        try:
            scenes.append(_scene_input(n, item, folder))
        except AssetMissingError as exc:
            problems.append(_stage_note(str(exc)))
    if problems:
        raise InputFileMissingError(problems)
    if title is not None and not title.strip():
        raise SceneValidationError("the title is empty")
    return TopicInput(folder, " ".join((title or _title(data, folder)).split()), scenes)


def check_music(path: Path | str) -> Path:
    """The music file, checked to exist and decode as audio (a tenth of a second is decoded)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileMissingError([f"music file {path} does not exist"])
    if not os.access(path, os.R_OK):
        raise InputFileMissingError([f"music file {path} is not readable (permission denied)"])
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-t", "0.1", "-i", str(path),
           "-map", "0:a:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = msg[-1] if msg else f"ffmpeg exit {proc.returncode}"
        raise ConfigError(f"music file {path} is not readable audio: {why}")
    return path
