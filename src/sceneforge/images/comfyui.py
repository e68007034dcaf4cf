"""The ``comfyui`` image backend: one text-to-image workflow run per scene on a ComfyUI server.

For each scene: fill the workflow (prompt, negative, seed, size, ``sceneforge/scene_N``
prefix), run it on the shared server pool, download the first still image to
``request.dest`` (atomically) and report the seed used as ``image_seed``.
Retrying is the stage's job: this class only raises the right error (see
:func:`sceneforge.retry.is_retryable`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import fingerprint
from ..comfy.client import ComfyClient
from ..comfy.jobs import ComfyBackend
from ..comfy.pool import PRIORITY_IMAGE, ComfyPool
from ..comfy.result import JobResult
from ..comfy.workflow import Workflow
from ..errors import WorkflowError
from ..events import Reporter, null_report
from .base import ImageBackend, ImageRequest, ImageResult

if TYPE_CHECKING:
    from ..backend import BackendResources
    from ..config import Settings

__all__ = ["ComfyImageBackend"]


class ComfyImageBackend(ComfyBackend, ImageBackend):
    """Generate scene images with a ComfyUI workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene whose request pins none. Jobs run on ``pool``, shared with motion and
    other topics and closed by its owner.
    """

    name = "comfyui"
    stage = "image"

    def __init__(
        self,
        workflow: Workflow,
        *,
        pool: ComfyPool[ComfyClient] | None = None,
        seed: int | None = None,
        width: int | None = None,
        height: int | None = None,
        negative: str | None = None,
        prompt_node: str | None = None,
        prompt_input: str = "text",
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
        )

    def fingerprint(self) -> dict[str, Any]:
        """Workflow content, seed policy, size, negative and prompt placement (not the server:
        the same workflow and models give the same image anywhere)."""
        return {
            "backend": "comfyui",
            "workflow": self.workflow.digest,
            "seed": "random" if self.seed is None else self.seed,
            "width": self.width,
            "height": self.height,
            "negative": self.negative,
            "prompt_node": self.prompt_node,
            "prompt_input": self.prompt_input,
        }

    async def generate(self, request: ImageRequest, report: Reporter = null_report) -> ImageResult:
        """Run the workflow for ``request.scene`` and write its first image to ``request.dest``."""
        scene, dest = request.scene, Path(request.dest)
        journal = self.journal(dest.parent, scene)
        key = fingerprint({**self.cache_key(request), "pinned_seed": request.seed})
        prior = journal.load(key)
        if prior is not None:
            resumed = await self.resume(prior, report)
            if resumed is not None:
                await self._save_first_still(*resumed, scene, dest)
                return ImageResult(dest, {"image_seed": prior.get("seed")})

        graph, seed = self.workflow.prepare_image(
            request.prompt,
            negative=request.negative if request.negative is not None else self.negative,
            seed=request.seed if request.seed is not None else self.seed,
            rng=self.rng,
            width=self.width,
            height=self.height,
            prompt_node=self.prompt_node,
            prompt_input=self.prompt_input,
            filename_prefix=f"sceneforge/scene_{scene}",
        )

        async def job(client: ComfyClient) -> None:
            result = await self.run_graph(client, graph, journal=journal, key=key, seed=seed, report=report)
            await self._save_first_still(client, result, scene, dest)

        await self.on_pool(job, scene=scene, priority=PRIORITY_IMAGE, report=report)
        return ImageResult(dest, {"image_seed": seed})

    async def _save_first_still(self, client: ComfyClient, result: JobResult, scene: int, dest: Path) -> None:
        stills = result.still_images()
        if not stills:
            raise WorkflowError(
                f"scene {scene}: workflow {self.workflow.source} produced no image on {client.server} "
                f"(outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a SaveImage node"
            )
        await client.download(stills[0], dest)
