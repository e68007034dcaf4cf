"""The ``comfyui`` image backend: one text-to-image workflow run per scene on a ComfyUI server.

For each scene: fill the workflow (prompt, negative, seed, size, ``sceneforge/scene_N``
prefix), run it on the shared server pool, download the first still image to
``request.dest`` (atomically) and report the seed used as ``image_seed``.
Retrying is the stage's job: this class only raises the right error (see
:func:`sceneforge.retry.is_retryable`).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import fingerprint
from ..comfy.backend import ComfyBackend, upload_name
from ..comfy.client import ComfyClient
from ..comfy.graphs.validate import choose_seed
from ..comfy.graphs.workflow import Workflow
from ..comfy.pool.pool import PRIORITY_IMAGE
from ..comfy.protocol.result import JobResult
from ..errors import ConfigError, WorkflowError
from ..events import Reporter, null_report
from .base import ImageBackend, ImageRequest, ImageResult

if TYPE_CHECKING:
    from ..backend import BackendResources, ServerPool
    from ..config import Settings

__all__ = ["ComfyImageBackend"]


class ComfyImageBackend(ComfyBackend[ImageRequest], ImageBackend):
    """Generate scene images with a ComfyUI workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene whose request pins none. Jobs run on ``pool``, shared with motion and
    other topics and closed by its owner.
    """

    name = "comfyui"
    backend_id = "comfyui"
    stage = "image"
    workflow_field = "workflow"

    def __init__(
        self,
        workflow: Workflow,
        *,
        pool: ServerPool | None = None,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        negative: str | None = None,
        prompt_node: str | None = None,
        prompt_input: str = "text",
        reference_node: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(pool)
        self.workflow = workflow
        self.seed = seed
        self.width = width
        self.height = height
        self.negative = negative
        self.prompt_node = prompt_node
        self.prompt_input = prompt_input
        self.reference_node = reference_node
        self.rng = rng if rng is not None else random.Random()

    @classmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> ComfyImageBackend:
        """Build from :class:`sceneforge.config.Settings`; jobs run on ``resources.pool``."""
        return cls(
            Workflow.load(settings.workflow, kind="image"),
            pool=resources.pool,
            seed=settings.seed,
            width=settings.width,
            height=settings.height,
            negative=settings.negative,
            prompt_node=settings.prompt_node,
            prompt_input=settings.prompt_input,
            reference_node=settings.reference_node,
        )

    def key_options(self) -> dict[str, Any]:
        """Size, negative and prompt placement (with the workflow and seed policy: the fingerprint)."""
        return {
            "width": self.width,
            "height": self.height,
            "negative": self.negative,
            "prompt_node": self.prompt_node,
            "prompt_input": self.prompt_input,
            "reference_node": self.reference_node,
        }

    def options(self) -> dict[str, Any]:
        """What builds this backend again for a scene's own workflow."""
        return {"seed": self.seed, "rng": self.rng, **self.key_options()}

    def _negative(self, request: ImageRequest) -> str | None:
        """The scene's negative prompt, else the run's when this workflow takes one (a guidance-distilled
        model zeroes its negative: the run's default does not apply to it; a scene's own still fails)."""
        if request.negative is not None:
            return request.negative
        return self.negative if self.negative is not None and self.workflow.takes_negative(
            self.prompt_node, self.prompt_input) else None

    def prepare(self, request: ImageRequest, seed: int, reference_name: str | None) -> dict[str, Any]:
        """The graph for ``request`` with ``seed`` and the uploaded reference's name."""
        graph, _ = self.workflow.prepare_image(
            request.prompt, negative=self._negative(request), seed=seed, width=self.width, height=self.height,
            prompt_node=self.prompt_node, prompt_input=self.prompt_input,
            filename_prefix=f"sceneforge/scene_{request.scene}", reference_name=reference_name,
            reference_node=self.reference_node,
        )
        return graph

    def check_graph(self, request: ImageRequest) -> dict[str, Any]:
        """The graph ``request`` would submit (seed 0, a placeholder reference name)."""
        return self.prepare(request, 0, "sceneforge_check.png" if request.reference else None)

    def check(self, request: ImageRequest) -> list[str]:
        """The scene's workflow loads and fits its reference image (needs one, or refuses one)."""
        try:
            self.sample_graph(request)
        except (WorkflowError, ConfigError) as exc:
            field = "workflow" if request.workflow else "the run's workflow"
            return [f"scene {request.scene}: {field}: {exc}"]
        return []

    async def generate(self, request: ImageRequest, report: Reporter = null_report) -> ImageResult:
        """Run the workflow for ``request.scene`` and write its first image to ``request.dest``."""
        return await self._for(request)._generate(request, report)

    async def _generate(self, request: ImageRequest, report: Reporter) -> ImageResult:
        scene, dest = request.scene, Path(request.dest)
        journal = self.journal(dest.parent, scene)
        key = fingerprint({**self.cache_key(request), "pinned_seed": request.seed})
        prior = journal.load(key)
        if prior is not None:
            resumed = await self.resume(prior, report)
            if resumed is not None:
                await self._save_first_still(*resumed, scene, dest)
                return ImageResult(dest, {"image_seed": prior.get("seed"), **self.usage(*resumed)})

        seed = choose_seed(request.seed if request.seed is not None else self.seed, self.rng)
        reference = await asyncio.to_thread(upload_name, request.reference) if request.reference else None

        async def job(client: ComfyClient) -> dict[str, float]:
            uploaded = None
            if request.reference:
                uploaded = await client.upload_image(request.reference, name=reference, content_addressed=True)
            graph = self.prepare(request, seed, uploaded)
            result = await self.run_graph(client, graph, journal=journal, key=key, seed=seed, report=report)
            await self._save_first_still(client, result, scene, dest)
            return self.usage(client, result)

        usage = await self.on_pool(job, scene=scene, priority=PRIORITY_IMAGE, report=report)
        return ImageResult(dest, {"image_seed": seed, **usage})

    async def _save_first_still(self, client: ComfyClient, result: JobResult, scene: int, dest: Path) -> None:
        stills = result.still_images()
        if not stills:
            raise WorkflowError(
                f"scene {scene}: workflow {self.workflow.source} produced no image on {client.server} "
                f"(outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a SaveImage node"
            )
        await client.download(stills[0], dest)
