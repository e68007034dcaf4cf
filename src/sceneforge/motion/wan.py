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

Retrying is the stage's job: this class only raises the right error. A job is
journaled before it is submitted, so the next attempt of the same scene (or the
next run, after a crash) re-attaches to it and downloads again instead of
rendering the clip again (a truncated download must not cost a GPU-minute); a
job that failed on the server is submitted again with the same seed.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import fingerprint
from ..comfy.backend import ComfyBackend, upload_name
from ..comfy.client import ComfyClient
from ..comfy.graphs.validate import check_motion_length, choose_seed
from ..comfy.graphs.workflow import Workflow
from ..comfy.journal import JobJournal
from ..comfy.pool.pool import PRIORITY_MOTION
from ..comfy.protocol.result import JobResult
from ..errors import AssetMissingError, ConfigError, WorkflowError
from ..events import Reporter, null_report
from ..layout import TopicLayout
from .base import MotionBackend, MotionRequest, MotionResult
from .frames import VIDEO_EXTS, discard, extract_frames, pick_frames, pick_video, to_png

if TYPE_CHECKING:
    from ..backend import BackendResources, ServerPool
    from ..config import Settings

__all__ = ["WanBackend", "MotionGenerator", "DEFAULT_FPS", "upload_name", "extract_frames"]

#: Used when neither the settings nor the workflow (CreateVideo ``fps``) say: Wan2.2 14B's native rate.
DEFAULT_FPS = 16.0

#: Where a video node takes its frame rate (literal, or a PrimitiveFloat feeding it).
_FPS_INPUTS = {"CreateVideo": "fps", "SaveWEBM": "fps", "SaveAnimatedWEBP": "fps", "SaveAnimatedPNG": "fps",
               "VHS_VideoCombine": "frame_rate"}
#: A clip's weight in the pool, in image jobs: about one image per this many frames.
_FRAMES_PER_IMAGE_JOB = 8


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


class WanBackend(ComfyBackend[MotionRequest], MotionBackend):
    """Turn scene images into Wan2.2 clips with a ComfyUI image-to-video workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene whose request pins none. ``length`` (frames, 4k+1) and ``width``/``height``
    are set on the latent node when given, else the workflow's own values stand.
    ``fps`` is written into the video nodes when given, else the workflow's rate is
    reported. Jobs run on ``pool``, shared with images and other topics.

    Everything that can be checked without a server is checked here, so a bad
    length, size or node choice fails before any job is submitted.
    """

    name = "wan"
    backend_id = "wan"
    stage = "motion"
    workflow_field = "motion_workflow"

    def __init__(
        self,
        workflow: Workflow,
        *,
        pool: ServerPool | None = None,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        length: int | None = None,
        fps: float | None = None,
        prompt_node: str | None = None,
        image_node: str | None = None,
        rng: random.Random | None = None,
        ffmpeg: str | None = None,
        job_timeout: float | None = None,
    ) -> None:
        super().__init__(pool)
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
        self._options: dict[str, Any] = {
            "seed": seed, "width": width, "height": height, "length": length, "fps": fps, "prompt_node": prompt_node,
            "image_node": image_node, "rng": self.rng, "ffmpeg": ffmpeg, "job_timeout": job_timeout,
        }

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> WanBackend:
        """Build from :class:`sceneforge.config.Settings`; jobs run on ``resources.pool``.

        A length that is not 4k+1, a size the latent node refuses or a prompt/image node that cannot be
        found raises :class:`ConfigError` / :class:`WorkflowError` here, before any job.
        """
        return cls(
            Workflow.load(settings.motion_workflow, kind="motion"),
            pool=resources.pool,
            seed=settings.motion_seed,
            width=settings.motion_width,
            height=settings.motion_height,
            length=settings.motion_length,
            fps=settings.motion_fps,
            prompt_node=settings.motion_prompt_node,
            image_node=settings.motion_image_node,
            job_timeout=settings.motion_timeout,
        )

    def key_options(self) -> dict[str, Any]:
        """Frames, size, fps and node choices (the image bytes and the prompt come with the request)."""
        return {
            "length": self.length,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "prompt_node": self.prompt_node,
            "image_node": self.image_node,
        }

    def options(self) -> dict[str, Any]:
        """What builds this backend again for a scene's own motion workflow (the settings, not the
        values read from the run's workflow)."""
        return dict(self._options)

    def check_graph(self, request: MotionRequest) -> dict[str, Any]:
        """The graph ``request`` would submit (seed 0, a placeholder image name)."""
        return self._fill("check", "sceneforge_check.png", 0, request.scene)[0]

    def check(self, request: MotionRequest) -> list[str]:
        """The scene's own motion workflow loads and takes the run's length, size and nodes."""
        try:
            self._for(request)
        except (WorkflowError, ConfigError) as exc:
            return [f"scene {request.scene}: motion_workflow: {exc}"]
        return []

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

    def _seed_for(self, request: MotionRequest, prior: dict[str, Any] | None) -> int:
        """The journaled job's seed (a retry asks for the same clip), else the scene's, else the policy's."""
        if prior is not None and isinstance(prior.get("seed"), int):
            return int(prior["seed"])
        return choose_seed(request.seed if request.seed is not None else self.seed, self.rng)

    async def generate(self, request: MotionRequest, report: Reporter = null_report) -> MotionResult:
        """Write ``frame_0001.png``... (and ``motion.<ext>`` when the workflow saves a video) into the work folder."""
        return await self._for(request)._generate(request, report)

    async def _generate(self, request: MotionRequest, report: Reporter) -> MotionResult:
        scene, image, work_dir = request.scene, Path(request.image), Path(request.work_dir)
        if not image.is_file():
            raise AssetMissingError(f"scene {scene}: image_path {image} does not exist; run the image stage first")
        name = await asyncio.to_thread(upload_name, image)
        work_dir.mkdir(parents=True, exist_ok=True)
        # A job an earlier attempt or a killed run submitted for this same request is re-attached, not rerun.
        journal = JobJournal(work_dir.parent, "motion", scene)
        key = fingerprint({"upload": name, **self.cache_key(request), "pinned_seed": request.seed})
        prior = journal.load(key)
        seed = self._seed_for(request, prior)
        written: list[Path] = []

        async def job(client: ComfyClient) -> tuple[list[Path], Path | None, dict[str, float]]:
            discard(written)  # files of an attempt on a server that stopped answering (the pool moved the job)
            uploaded = await client.upload_image(image, name=name, content_addressed=True)
            graph, _ = self._fill(request.prompt, uploaded, seed, scene)
            result = await self.run_graph(client, graph, journal=journal, key=key, seed=seed, report=report,
                                          timeout=self.job_timeout)
            return (*await self._fetch(client, result, scene, work_dir, written), self.usage(client, result))

        try:
            resumed = await self.resume(prior, report, timeout=self.job_timeout) if prior is not None else None
            if resumed is not None:
                frames, video = await self._fetch(*resumed, scene, work_dir, written)
                usage = self.usage(*resumed)
            else:
                frames, video, usage = await self.on_pool(job, scene=scene, priority=PRIORITY_MOTION,
                                                          report=report, weight=self.weight)
            if not frames:
                assert video is not None
                frames, video = await self._frames_from_video(video, work_dir, scene, report)
        except BaseException:
            discard(written + list(work_dir.glob("frame_*.png")))
            raise
        return MotionResult(frames, self.fps, {"motion_seed": seed, **usage}, video=video)

    async def _fetch(
        self, client: ComfyClient, result: JobResult, scene: int, work_dir: Path, written: list[Path]
    ) -> tuple[list[Path], Path | None]:
        """Download the job's frames one at a time (each streamed to disk), and its video when kept."""
        stills, video_ref = pick_frames(result), pick_video(result)
        if not stills and video_ref is None:
            raise WorkflowError(
                f"scene {scene}: workflow {self.workflow.source} produced no frames and no video on "
                f"{client.server} (outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a "
                "SaveImage node for the frames or a SaveVideo node"
            )
        frames: list[Path] = []
        for i, ref in enumerate(stills, 1):
            dest = work_dir / TopicLayout.frame_name(i)
            if str(ref["filename"]).lower().endswith(".png"):
                written.append(dest)
                await client.download(ref, dest)
            else:  # a JPEG/WebP saver: convert, so every frame is a PNG
                raw = work_dir / f".frame_{i:04d}{Path(str(ref['filename'])).suffix.lower()}"
                written.extend((raw, dest))
                await client.download(ref, raw)
                await asyncio.to_thread(to_png, raw, dest)
                raw.unlink()
            frames.append(dest)
        video: Path | None = None
        if video_ref is not None:
            ext = Path(str(video_ref["filename"])).suffix.lower()
            if not frames or ext in VIDEO_EXTS:
                video = work_dir / f"motion{ext or '.mp4'}"
                written.append(video)
                await client.download(video_ref, video)
        return frames, video

    async def _frames_from_video(
        self, video: Path, work_dir: Path, scene: int, report: Reporter
    ) -> tuple[list[Path], Path | None]:
        """The frames of a video-only workflow; the video is kept when it is a real container."""
        frames, video_fps = await extract_frames(video, work_dir, ffmpeg=self.ffmpeg)
        if video_fps is not None and abs(video_fps - self.fps) > 0.01:
            report("warning", message=(
                f"scene {scene}: the workflow's video runs at {video_fps:g} fps, but its frames are "
                f"recorded at {self.fps:g} fps (set motion_fps to choose)"))
        if video.suffix.lower() not in VIDEO_EXTS:
            video.unlink()  # an animated PNG/WebP is not a video to keep
            return frames, None
        return frames, video


#: The name the original spec gives the Wan backend (public API; the entry point names :class:`WanBackend`).
MotionGenerator = WanBackend
