"""The ``wan`` motion backend: Wan2.2 image-to-video on a ComfyUI server.

For each scene, inside **one** pool job (so every step talks to the same server):

1. upload the scene's image under a content-addressed name
   (``sceneforge_<sha256[:16]>.png``: identical images are stored once, and two
   topics' images can never be mistaken for each other);
2. fill the workflow: the LoadImage node's ``image`` (auto-detected, or
   ``image_node``), the positive prompt, every seed, width/height/length on the
   latent node (WanImageToVideo, Wan22ImageToVideoLatent), the fps of the video
   nodes when one is configured, and ``filename_prefix`` ``sceneforge/motion_<scene>``;
3. run it;
4. download the still PNG frames (SaveImage) one at a time, each streamed to
   ``work_dir/frame_0001.png`` ... in output order, and the video too when the
   workflow also saves one.

When the workflow saves only a video (``images`` with ``animated: [true]``:
SaveVideo, SaveWEBM, ...), the video is downloaded to ``work_dir/motion.<ext>``
and its frames are extracted after the job, with the ffmpeg of imageio-ffmpeg
(animated PNG/WebP with Pillow, one frame at a time). Memory never grows with
the number of frames.

Retrying is the stage's job: this class only raises the right error. After a
retryable failure the next attempt of the same scene reuses the seed, so a
server that still holds the job in its cache answers at once instead of
rendering the clip again (a truncated download must not cost a GPU-minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from pathlib import Path
from typing import Any

from ..cache import file_digest, fingerprint
from ..comfy.client import ComfyClient
from ..comfy.pool import PRIORITY_MOTION, ComfyPool
from ..comfy.pooled import PoolUser, resume_job
from ..comfy.validate import check_motion_length, choose_seed
from ..comfy.workflow import Workflow
from ..errors import AssetMissingError, ConfigError, GenerationError, JobTimeoutError, WorkflowError
from ..journal import JobJournal
from ..layout import TopicLayout
from ..retry import is_retryable
from .base import MotionBackend, MotionResult, motion_registry

__all__ = ["MotionGenerator", "DEFAULT_FPS", "upload_name", "extract_frames"]

#: Used when neither the settings nor the workflow (CreateVideo ``fps``) say: Wan2.2 14B's native rate.
DEFAULT_FPS = 16.0

#: Video containers whose file is kept as the clip's video (and decoded by ffmpeg when it is all there is).
_VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov")
#: Animated images: decoded with Pillow (ffmpeg cannot read animated WebP); not kept as a video.
_ANIMATED_IMAGE_EXTS = (".png", ".apng", ".webp", ".gif")
#: Where a video node takes its frame rate (literal, or a PrimitiveFloat feeding it).
_FPS_INPUTS = {"CreateVideo": "fps", "SaveWEBM": "fps", "SaveAnimatedWEBP": "fps", "SaveAnimatedPNG": "fps",
               "VHS_VideoCombine": "frame_rate"}
#: A clip's weight in the pool, in image jobs: about one image per this many frames.
_FRAMES_PER_IMAGE_JOB = 8
_FFMPEG_TIMEOUT = 600.0


def upload_name(image: Path) -> str:
    """``sceneforge_<first 16 hex of sha256>.<ext>``: the same bytes always get the same name."""
    ext = Path(image).suffix.lower()
    ext = ext if re.fullmatch(r"\.[a-z0-9]{1,5}", ext) else ".png"
    return f"sceneforge_{file_digest(Path(image))[:16]}{ext}"


def _set_fps(graph: dict[str, Any], fps: float) -> None:
    """Write ``fps`` into every video node's frame rate (or the primitive feeding it)."""
    for node in graph.values():
        name = _FPS_INPUTS.get(node.get("class_type"))
        if name is None or name not in node["inputs"]:
            continue
        value = node["inputs"][name]
        if isinstance(value, list) and len(value) == 2 and value[0] in graph:
            src = graph[value[0]]["inputs"]
            if "value" in src and not isinstance(src["value"], list):
                src["value"] = fps
        else:
            node["inputs"][name] = fps


def _pick_frames(result: Any) -> list[dict[str, Any]]:
    """The still frames of a job: saved (``output``) stills before previews (``temp``), and of those
    the node that produced the most (a workflow may also save, say, its start image), in output order."""
    stills = result.still_images()
    saved = [r for r in stills if r.get("type", "output") == "output"]
    stills = saved or stills
    by_node: dict[str, list[dict[str, Any]]] = {}
    for ref in stills:
        by_node.setdefault(str(ref.get("node")), []).append(ref)
    if not by_node:
        return []
    return max(by_node.values(), key=len)  # max keeps the first of equals: output order


def _pick_video(result: Any) -> dict[str, Any] | None:
    """The first animated output, preferring a real video container (mp4 first) over animated images."""
    animated = [r for r in result.images() if r.get("animated")]

    def rank(ref: dict[str, Any]) -> int:
        ext = Path(str(ref["filename"])).suffix.lower()
        return _VIDEO_EXTS.index(ext) if ext in _VIDEO_EXTS else len(_VIDEO_EXTS) + (
            0 if ext in _ANIMATED_IMAGE_EXTS else 1)

    return min(animated, key=rank) if animated else None


_FPS_RE = re.compile(r"Stream #\d+:\d+.*?: Video:.*?(\d+(?:\.\d+)?) fps")


async def extract_frames(video: Path, work_dir: Path, *, ffmpeg: str | None = None,
                         timeout: float = _FFMPEG_TIMEOUT) -> tuple[list[Path], float | None]:
    """Decode ``video`` into ``work_dir/frame_0001.png`` ...; return the frames and the video's fps.

    Real videos go through ffmpeg (one subprocess, every frame kept as it is: ``-fps_mode
    passthrough``, or ``-vsync 0`` for an ffmpeg older than 5.1); animated PNG/WebP through
    Pillow. Raises :class:`GenerationError` when nothing can be decoded.
    """
    video, work_dir = Path(video), Path(work_dir)
    if video.suffix.lower() in _ANIMATED_IMAGE_EXTS:
        return await asyncio.to_thread(_split_animated_image, video, work_dir)
    if ffmpeg is None:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    pattern = str(work_dir / "frame_%04d.png")
    last = ""
    for sync in (["-fps_mode", "passthrough"], ["-vsync", "0"]):
        args = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", str(video), *sync,
                "-start_number", "1", pattern]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:  # timeout or cancellation: do not leave ffmpeg running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await proc.wait()
            _remove_frames(work_dir)
            raise
        last = err.decode("utf-8", "replace")
        if proc.returncode == 0:
            break
        _remove_frames(work_dir)
        if "Unrecognized option" not in last:
            break
    frames = sorted(work_dir.glob("frame_*.png"))
    if proc.returncode != 0 or not frames:
        _remove_frames(work_dir)
        tail = " | ".join(line.strip() for line in last.strip().splitlines()[-3:])
        raise GenerationError(f"could not extract frames from {video.name} with ffmpeg: {tail or 'no frames'}")
    m = _FPS_RE.search(last)
    return frames, float(m.group(1)) if m else None


def _split_animated_image(video: Path, work_dir: Path) -> tuple[list[Path], float | None]:
    from PIL import Image, ImageSequence

    from ..fsutil import atomic_path

    frames: list[Path] = []
    fps: float | None = None
    try:
        with Image.open(video) as im:
            duration = im.info.get("duration")
            fps = 1000.0 / duration if isinstance(duration, (int, float)) and duration > 0 else None
            for i, frame in enumerate(ImageSequence.Iterator(im), 1):
                dest = work_dir / TopicLayout.frame_name(i)
                with atomic_path(dest) as tmp:
                    frame.convert("RGB").save(tmp, "PNG", compress_level=1)
                frames.append(dest)
    except OSError as exc:
        _remove_frames(work_dir)
        raise GenerationError(f"could not read the frames of {video.name}: {exc}") from exc
    if not frames:
        raise GenerationError(f"{video.name} holds no frames")
    return frames, fps


def _remove_frames(work_dir: Path) -> None:
    for p in Path(work_dir).glob("frame_*.png"):
        with contextlib.suppress(OSError):
            p.unlink()


@motion_registry.register("wan")
class MotionGenerator(PoolUser, MotionBackend):
    """Turn scene images into Wan2.2 clips with a ComfyUI image-to-video workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene. ``length`` (frames, 4k+1) and ``width``/``height`` are set on the
    latent node when given, else the workflow's own values stand. ``fps`` is
    written into the video nodes when given, else the workflow's rate is
    reported. Jobs run on ``pool`` (shared with images and other topics) when
    given, else on a pool of one ``client`` built from ``url``/``headers``/``timeout``.

    Everything that can be checked without a server is checked here, so a bad
    length, size or node choice fails before any job is submitted.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        url: str = "http://127.0.0.1:8188",
        headers: dict[str, Any] | None = None,
        timeout: float = 300.0,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        length: int | None = None,
        fps: float | None = None,
        prompt_node: str | None = None,
        image_node: str | None = None,
        rng: random.Random | None = None,
        client: ComfyClient | None = None,
        pool: ComfyPool | None = None,
        ffmpeg: str | None = None,
        job_timeout: float | None = None,
    ) -> None:
        self.workflow = workflow
        self.job_timeout = job_timeout  # per Wan job; None: the client's own timeout
        self.seed = seed
        self.width = width
        self.height = height
        self.prompt_node = prompt_node
        self.image_node = image_node
        self.rng = rng if rng is not None else random.Random()
        self.ffmpeg = ffmpeg
        self._length_setting = length
        self.length = length if length is not None else workflow.length()
        if self.length is not None:
            check_motion_length(self.length)  # ConfigError naming the nearest valid counts
        self._fps_setting = fps
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
            raise ConfigError(f"motion fps must be a positive number, got {fps!r}")
        self.fps = float(fps if fps is not None else workflow.fps() or DEFAULT_FPS)
        # A dry run: the prompt/image nodes are found and the size suits the latent node, or this raises.
        self._fill("check", "sceneforge_check.png", self.seed if self.seed is not None else 0)
        self._retry_seeds: dict[tuple[int, str, str], int] = {}
        self._init_pool(pool=pool, client=client, url=url, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Any, pool: ComfyPool | None = None) -> MotionGenerator:
        """Build from :class:`sceneforge.config.Settings`; without a shared ``pool``, all ``comfy_urls`` form one.

        A length that is not 4k+1, a size the latent node refuses or a prompt/image node that cannot be
        found raises :class:`ConfigError` / :class:`WorkflowError` here, before any job.
        """
        return cls._build(
            settings,
            pool,
            Workflow.load(settings.motion_workflow, kind="motion"),
            seed=settings.motion_seed,
            width=settings.motion_width,
            height=settings.motion_height,
            length=settings.motion_length,
            fps=settings.motion_fps,
            prompt_node=settings.motion_prompt_node,
            image_node=settings.motion_image_node,
            job_timeout=settings.motion_timeout,
        )

    def fingerprint(self) -> dict[str, Any]:
        """Workflow content, seed policy, frames, size, fps and node choices (the image bytes and the
        prompt are keyed by the stage; the server is not: the same workflow and models give the same clip)."""
        return {
            "backend": "wan",
            "workflow": self.workflow.digest,
            "seed": "random" if self.seed is None else self.seed,
            "length": self.length,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "prompt_node": self.prompt_node,
            "image_node": self.image_node,
        }

    @property
    def weight(self) -> float:
        """A clip's share of a server in the pool's balancing, in image jobs (81 frames: about 11)."""
        return 1.0 + (self.length or 81) / _FRAMES_PER_IMAGE_JOB

    def _fill(self, prompt: str, image_name: str, seed: int, scene: int | None = None) -> tuple[dict[str, Any], int]:
        graph, used = self.workflow.prepare_motion(
            prompt,
            image_name,
            seed=seed,
            width=self.width,
            height=self.height,
            length=self._length_setting,
            prompt_node=self.prompt_node,
            image_node=self.image_node,
            filename_prefix=f"sceneforge/motion_{scene if scene is not None else 0}",
        )
        if self._fps_setting is not None:
            _set_fps(graph, self.fps)
        return graph, used

    async def generate(self, scene: int, image: Path, prompt: str, work_dir: Path) -> MotionResult:
        """Write ``frame_0001.png``... (and ``motion.<ext>`` when the workflow saves a video) into ``work_dir``."""
        image, work_dir = Path(image), Path(work_dir)
        if not image.is_file():
            raise AssetMissingError(f"scene {scene}: image_path {image} does not exist; run the image stage first")
        name = await asyncio.to_thread(upload_name, image)
        key = (scene, name, prompt)
        seed = self._retry_seeds.pop(key, None)
        if seed is None:
            seed = choose_seed(self.seed, self.rng)
        work_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        # A job an earlier, killed run submitted for this same request is re-attached, not rerun.
        journal = JobJournal(work_dir.parent, "motion", scene)
        jkey = fingerprint({"image": name, "prompt": prompt, **self.fingerprint()})
        prior = journal.load(jkey)
        if prior is not None and isinstance(prior.get("seed"), int):
            seed = prior["seed"]

        async def job(client: ComfyClient) -> tuple[list[Path], Path | None]:
            on_event = self._job_events(scene, client)

            _discard(written)  # files of an attempt on a server that stopped answering (the pool moved the job)
            uploaded = await client.upload_image(image, name=name)
            graph, _ = self._fill(prompt, uploaded, seed, scene)

            def remember(prompt_id: str, client_id: str) -> None:
                journal.save(jkey, server=client.server, prompt_id=prompt_id, client_id=client_id, seed=seed)

            try:
                result = await client.run(graph, on_event=on_event, on_submit=remember, timeout=self.job_timeout)
            except JobTimeoutError:
                journal.clear()  # the client cancelled it: the retry must submit anew, not re-attach
                raise
            return await fetch(client, result)

        async def fetch(client: ComfyClient, result: Any) -> tuple[list[Path], Path | None]:
            stills, video_ref = _pick_frames(result), _pick_video(result)
            if not stills and video_ref is None:
                raise WorkflowError(
                    f"scene {scene}: workflow {self.workflow.source} produced no frames and no video on "
                    f"{client.server} (outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a "
                    "SaveImage node for the frames or a SaveVideo node"
                )
            frames: list[Path] = []
            for i, ref in enumerate(stills, 1):  # one at a time, each streamed to disk
                dest = work_dir / TopicLayout.frame_name(i)
                if str(ref["filename"]).lower().endswith(".png"):
                    await client.download(ref, dest)
                    written.append(dest)
                else:  # a JPEG/WebP saver: convert, so every frame is a PNG
                    raw = work_dir / f".frame_{i:04d}{Path(str(ref['filename'])).suffix.lower()}"
                    written.append(raw)
                    await client.download(ref, raw)
                    await asyncio.to_thread(_to_png, raw, dest)
                    written.append(dest)
                    raw.unlink()
                frames.append(dest)
            video: Path | None = None
            if video_ref is not None:
                ext = Path(str(video_ref["filename"])).suffix.lower()
                if not frames or ext in _VIDEO_EXTS:
                    video = work_dir / f"motion{ext or '.mp4'}"
                    written.append(video)
                    await client.download(video_ref, video)
            return frames, video

        moved = self._failover_warning(scene)

        try:
            resumed = await resume_job(self.pool, prior, timeout=self.job_timeout) if prior is not None else None
            if resumed is not None:
                frames, video = await fetch(*resumed)
            else:
                frames, video = await self.pool.run(job, priority=PRIORITY_MOTION, weight=self.weight, on_failover=moved)
            if not frames:
                assert video is not None
                frames, video_fps = await extract_frames(video, work_dir, ffmpeg=self.ffmpeg)
                if video_fps is not None and abs(video_fps - self.fps) > 0.01:
                    self._event("warning", scene, message=(
                        f"scene {scene}: the workflow's video runs at {video_fps:g} fps, but its frames are "
                        f"recorded at {self.fps:g} fps (set motion_fps to choose)"))
                if video.suffix.lower() not in _VIDEO_EXTS:
                    video.unlink()  # an animated PNG/WebP is not a video to keep
                    video = None
        except BaseException as exc:
            _discard(written + list(work_dir.glob("frame_*.png")))
            if isinstance(exc, Exception) and is_retryable(exc):
                self._retry_seeds[key] = seed  # the next attempt asks for the same clip: the server may have it
            if isinstance(exc, GenerationError):
                exc.for_scene(scene, "motion")
            raise
        return MotionResult(frames, self.fps, {"motion_seed": seed}, video=video)


def _discard(paths: list[Path]) -> None:
    """Remove files written so far (a list that is then emptied)."""
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()
    paths.clear()


def _to_png(src: Path, dest: Path) -> None:
    from PIL import Image

    from ..fsutil import atomic_path

    with Image.open(src) as im, atomic_path(dest) as tmp:
        im.convert("RGB").save(tmp, "PNG", compress_level=1)

