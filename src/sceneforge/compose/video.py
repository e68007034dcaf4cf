"""The picture pass: one ffmpeg filter graph from the scenes' images to the finished MP4.

Per scene, one input and one chain, ending as ``[v<i>]`` with exactly its
clip's frames (:meth:`.Timeline.clips`) at the output rate:

* **A still** is read and fitted once, repeated in memory (``loop``) for the
  clip's frames, and moved with ``perspective``: a slow Ken Burns move (8%),
  zooming in on the 1st, 3rd, ... scene and out on the others, sampled with
  sub-pixel precision (``zoompan`` rounds its crop to whole pixels, and the
  picture wobbles by about half a pixel from frame to frame).
* **Motion frames** play at their own fps (``motion_fps``), converted to the
  output rate by repeating frames; a clip shorter than its scene *holds* its
  last frame (never loops: a Wan clip starts from the still, so a loop would
  jump back), a longer one is cut at the scene's end.
* **Fit.** An image whose aspect is within 20% of the frame's is scaled to
  cover it and centre-cropped (``cover``); another one (a landscape picture in
  a portrait frame) is shown whole over a blurred, darkened copy of itself
  (``blur``). ``fit`` forces either.

The clips are joined with ``xfade`` at the timeline's offsets (or ``concat``
for ``transition="none"``), the captions burned in with libass (``subtitles``),
and the soundtrack (:mod:`.audio`) normalised on the way into AAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..media import ffmpeg_exe
from .options import ComposeOptions
from .timeline import Clip, Timeline

__all__ = ["ZOOM", "SceneSource", "picture_command", "fit_mode"]

ZOOM = 1.08  # how far a still moves over its scene


@dataclass(frozen=True)
class SceneSource:
    """What ffmpeg reads for one scene: a still (``fps`` None) or an image sequence pattern at ``fps``."""

    path: str
    fps: float | None
    fit: str  # "cover" or "blur"


def fit_mode(image: Path | tuple[int, int], size: tuple[int, int], wanted: str) -> str:
    """``cover`` or ``blur`` for ``image`` (a file, or its size) in a frame of ``size`` (``wanted`` is
    ``auto``, ``cover`` or ``blur``)."""
    if wanted != "auto":
        return wanted
    if isinstance(image, tuple):
        iw, ih = image
    else:
        with Image.open(image) as im:
            iw, ih = im.size
    ratio = (iw / ih) / (size[0] / size[1])
    return "cover" if 1 / 1.2 <= ratio <= 1.2 else "blur"


def _fit(label_in: str, label_out: str, w: int, h: int, fit: str, tag: str) -> str:
    """A chain fitting ``label_in`` into w x h (cover, or whole over a blurred fill)."""
    cover = f"scale={w}:{h}:force_original_aspect_ratio=increase:flags=bicubic,crop={w}:{h},setsar=1"
    if fit == "cover":
        return f"{label_in}{cover}{label_out}"
    sigma = max(4, round(min(w, h) / 40))
    return (f"{label_in}split=2[{tag}a][{tag}b];[{tag}a]{cover},gblur=sigma={sigma},eq=brightness=-0.12[{tag}bg];"
            f"[{tag}b]scale={w}:{h}:force_original_aspect_ratio=decrease:flags=bicubic,setsar=1[{tag}fg];"
            f"[{tag}bg][{tag}fg]overlay=(W-w)/2:(H-h)/2{label_out}")


def _still_chain(i: int, clip: Clip, src: SceneSource, opts: ComposeOptions) -> str:
    w, h = opts.size
    n = clip.frames
    z0, z1 = (1.0, ZOOM) if i % 2 == 0 else (ZOOM, 1.0)  # in on the 1st, 3rd, ... scene; out on the others
    zoom = f"({z0:.5f}+({z1 - z0:.5f})*on/{max(1, n - 1)})"
    hx, hy = f"(W/2/{zoom})", f"(H/2/{zoom})"
    # perspective maps the source rectangle centred on the frame, 1/zoom of it, onto the whole frame,
    # with sub-pixel (bilinear) sampling: zoompan rounds its crop to whole pixels and wobbles.
    corners = ":".join(f"x{k}='W/2{sx}{hx}':y{k}='H/2{sy}{hy}'"
                       for k, (sx, sy) in enumerate((("-", "-"), ("+", "-"), ("-", "+"), ("+", "+"))))
    return (_fit(f"[{i}:v]", f"[f{i}]", w, h, src.fit, f"s{i}") + ";"
            f"[f{i}]loop=loop={n - 1}:size=1:start=0,settb=1/{opts.fps},setpts=N,fps={opts.fps},"
            f"perspective={corners}:eval=frame:interpolation=linear,format=yuv420p[v{i}]")


def _motion_chain(i: int, clip: Clip, src: SceneSource, opts: ComposeOptions) -> str:
    w, h = opts.size
    n = clip.frames
    hold = n / opts.fps + 1.0  # enough held frames for any clip length; trimmed to the scene next
    return (_fit(f"[{i}:v]", f"[f{i}]", w, h, src.fit, f"m{i}") + ";"
            f"[f{i}]fps={opts.fps},tpad=stop_mode=clone:stop_duration={hold:.3f},"
            f"trim=end_frame={n},settb=1/{opts.fps},setpts=N,format=yuv420p[v{i}]")


def _join(timeline: Timeline, opts: ComposeOptions) -> str:
    n = timeline.scenes
    if n == 1:
        return "[v0]null[joined]"
    if timeline.crossfade_frames == 0:
        return "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[joined]"
    dur = timeline.crossfade_frames / opts.fps
    parts, prev = [], "[v0]"
    for k, offset in enumerate(timeline.transition_offsets(), 1):
        out = "[joined]" if k == n - 1 else f"[x{k}]"
        parts.append(f"{prev}[v{k}]xfade=transition={opts.transition}:duration={dur:.5f}:offset={offset:.5f}{out}")
        prev = out
    return ";".join(parts)


def _inputs(sources: list[SceneSource]) -> list[str]:
    args: list[str] = []
    for src in sources:
        if src.fps is None:
            args += ["-i", src.path]
        else:
            args += ["-framerate", f"{src.fps:g}", "-start_number", "1", "-i", src.path]
    return args


def picture_command(
    sources: list[SceneSource], timeline: Timeline, opts: ComposeOptions, *, mix: str, audio_chain: str,
    captions: str | None, fonts: str, title: str, dest: Path,
) -> list[str]:
    """The ffmpeg command of the picture pass (run in the work folder: ``mix``, ``captions``, ``fonts``
    and the image-sequence patterns are names relative to it, so no path needs filter escaping)."""
    clips = timeline.clips()
    graph = [(_still_chain if src.fps is None else _motion_chain)(i, clip, src, opts)
             for i, (src, clip) in enumerate(zip(sources, clips))]
    graph.append(_join(timeline, opts))
    subs = f"subtitles=filename={captions}:fontsdir={fonts}," if captions else ""
    graph.append(f"[joined]{subs}format=yuv420p[vout]")
    graph.append(f"[{len(sources)}:a]{audio_chain}[aout]")
    return [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-progress", "pipe:1",
        *_inputs(sources), "-i", mix,
        "-filter_complex", ";".join(graph), "-map", "[vout]", "-map", "[aout]",
        "-frames:v", str(timeline.total_frames), "-r", str(opts.fps),
        "-c:v", "libx264", "-preset", opts.preset, "-crf", str(opts.crf), "-pix_fmt", "yuv420p",
        "-profile:v", "high", "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2",
        "-movflags", "+faststart", "-metadata", f"title={title}", "-f", "mp4", str(dest),
    ]
