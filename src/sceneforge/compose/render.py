"""``compose_topic``: final.mp4 and cover.jpg from a topic's current assets.

Order of work: options and every input are checked first (missing assets,
unreadable music: an error before any ffmpeg runs); the timeline is planned
once (:mod:`.timeline`) and the captions, soundtrack and picture all derive
from it; then two ffmpeg runs: the audio mix with its loudness measurements
(audio only, fast) and the picture pass, which encodes the MP4 in one go. The
work folder (captions, mix, links to the frames and the font) is removed
whatever happens; final.mp4 and cover.jpg are written under temporary names and
renamed, so an error or a cancel leaves the previous ones untouched.

Synchronous and CPU-bound (ffmpeg does the work): call it in a thread from
async code, with a :class:`threading.Event` to cancel.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..fonts import cjk_font_path
from ..fsutil import atomic_path
from ..layout import FINAL_NAME
from .audio import fit_loudness, mix_command
from .captions import CaptionStyle, caption_events, write_ass
from .cover import COVER_NAME, make_cover
from .inputs import SceneInput, TopicInput, check_music, load_topic, picture
from .options import ComposeOptions
from .process import ProgressCallback, run_ffmpeg
from .timeline import Timeline, plan_timeline
from .video import SceneSource, fit_mode, picture_command

__all__ = ["FINAL_NAME", "ComposeResult", "compose_topic", "plan_compose"]



@dataclass(frozen=True)
class ComposeResult:
    """What was written, and how: the video, its cover, its length, and the caption mode per scene."""

    path: Path
    cover: Path
    duration: float
    timeline: Timeline
    captions: tuple[str, ...]  # "words", "lines" or "none", per scene


@dataclass(frozen=True)
class ComposePlan:
    """Checked inputs and the timeline: everything needed before the first ffmpeg starts."""

    topic: TopicInput
    options: ComposeOptions
    timeline: Timeline


def plan_compose(topic_dir: Path | str, options: ComposeOptions | None = None) -> ComposePlan:
    """Check every input and plan the timeline; raises before any work when something is missing."""
    options = options or ComposeOptions()
    topic = load_topic(topic_dir, options.title)
    if options.music is not None:
        check_music(options.music)
    timeline = plan_timeline([s.duration for s in topic.scenes], fps=options.fps, pad=options.pad,
                             crossfade=options.crossfade)
    return ComposePlan(topic, options, timeline)


def _source(i: int, sc: SceneInput, work: Path, opts: ComposeOptions) -> SceneSource:
    """Scene ``i``'s ffmpeg input; motion frames are linked as ``scene_i/frame_%04d.png`` in the work folder."""
    frames = sc.scene.frames
    first = frames[0] if frames else sc.scene.image
    assert first is not None  # load_topic checked it
    # the size read when the picture was checked, unless the frames are drawn from another file than it
    fit = fit_mode(sc.picture_size if first == picture(sc.scene) else first, opts.size, opts.fit)
    if not frames:
        return SceneSource(str(first.resolve()), None, fit)
    folder = work / f"scene_{i}"
    folder.mkdir()
    for k, frame in enumerate(frames, 1):
        (folder / f"frame_{k:04d}{frame.suffix}").symlink_to(frame.resolve())
    return SceneSource(f"scene_{i}/frame_%04d{frames[0].suffix}", sc.scene.fps, fit)


def _caption_modes(plan: ComposePlan) -> tuple[str, ...]:
    mode = plan.options.captions
    if mode == "none":
        return tuple("none" for _ in plan.topic.scenes)
    return tuple("words" if mode == "words" and s.words else "lines" for s in plan.topic.scenes)


def _soundtrack(plan: ComposePlan, work: Path, cancel: threading.Event | None) -> str:
    """Write the mix to ``work/mix.wav``; return the loudness chain the picture pass applies to it."""
    opts = plan.options
    narrations = [s.scene.audio.resolve() for s in plan.topic.scenes if s.scene.audio is not None]
    music = opts.music.resolve() if opts.music is not None else None
    leads = [s.lead for s in plan.topic.scenes]
    cmd = mix_command(narrations, leads, music, plan.timeline, work / "mix.wav", opts.music_volume)
    run_ffmpeg(cmd, cwd=work, log=work / "mix.log", what="the soundtrack", cancel=cancel)
    return fit_loudness(work / "mix.wav", opts.loudness, opts.true_peak, work, cancel)


def _captions(plan: ComposePlan, work: Path) -> str | None:
    style = CaptionStyle(*plan.options.size)
    events = caption_events(plan.topic.scenes, plan.timeline, plan.options.captions, style)
    if not events:
        return None
    (work / "fonts").mkdir()
    font = cjk_font_path()
    (work / "fonts" / font.name).symlink_to(font.resolve())
    write_ass(work / "captions.ass", events, style)
    return "captions.ass"


def _render(plan: ComposePlan, work: Path, on_progress: ProgressCallback | None,
            cancel: threading.Event | None) -> ComposeResult:
    opts, topic = plan.options, plan.topic
    sources = [_source(i, sc, work, opts) for i, sc in enumerate(topic.scenes)]
    captions = _captions(plan, work)
    chain = _soundtrack(plan, work, cancel)
    dest = topic.folder / FINAL_NAME
    with atomic_path(dest) as tmp:
        cmd = picture_command(sources, plan.timeline, opts, mix="mix.wav", audio_chain=chain, captions=captions,
                              fonts="fonts", title=topic.title, dest=tmp.resolve())
        run_ffmpeg(cmd, cwd=work, log=work / "picture.log", what=str(dest), total=plan.timeline.duration,
                   on_progress=on_progress, cancel=cancel)
    first = topic.scenes[0]
    fit = fit_mode(first.picture_size, opts.size, opts.fit)
    cover = make_cover(picture(first.scene), topic.title, opts.size, fit, topic.folder / COVER_NAME)
    return ComposeResult(dest, cover, plan.timeline.duration, plan.timeline, _caption_modes(plan))


def compose_topic(
    topic_dir: Path | str, options: ComposeOptions | None = None, *,
    on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
) -> ComposeResult:
    """Write ``topic_dir/final.mp4`` and ``cover.jpg`` (see the module docstring).

    ``on_progress(seconds_done, seconds_total)`` follows the picture pass;
    setting ``cancel`` stops it (:class:`~sceneforge.errors.RenderCancelledError`).
    Bad input raises before any work: :class:`~sceneforge.errors.InputFileMissingError`
    listing every scene's missing asset and its stage, :class:`~sceneforge.errors.ConfigError`
    for bad options or a music file that is not audio.
    """
    plan = plan_compose(topic_dir, options)
    work = Path(tempfile.mkdtemp(prefix="sceneforge-compose-"))
    try:
        return _render(plan, work, on_progress, cancel)
    finally:
        shutil.rmtree(work, ignore_errors=True)
