"""The ``comfyui`` image backend: one text-to-image workflow run per scene on a ComfyUI server.

For each scene: fill the workflow (prompt, seed, size, ``sceneforge/scene_N``
prefix), run it, download the first still image to ``dest`` (atomically) and
report the seed used as ``image_seed``. Retrying is the stage's job: this class
only raises the right error (see :func:`sceneforge.retry.is_retryable`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..cache import fingerprint
from ..comfy.client import ComfyClient
from ..comfy.pool import PRIORITY_IMAGE, ComfyPool
from ..comfy.pooled import PoolUser, resume_job
from ..comfy.workflow import Workflow
from ..errors import GenerationError, JobTimeoutError, WorkflowError
from ..journal import JobJournal
from .base import ImageBackend, ImageResult, image_registry

__all__ = ["ComfyImageBackend"]


@image_registry.register("comfyui")
class ComfyImageBackend(PoolUser, ImageBackend):
    """Generate scene images with a ComfyUI workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene. Jobs run on ``pool`` (shared with motion and other topics) when given,
    else on a pool of one ``client`` built from ``url``/``headers``/``timeout``.
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
        negative: str | None = None,
        prompt_node: str | None = None,
        prompt_input: str = "text",
        rng: random.Random | None = None,
        client: ComfyClient | None = None,
        pool: ComfyPool | None = None,
    ) -> None:
        self.workflow = workflow
        self.seed = seed
        self.width = width
        self.height = height
        self.negative = negative
        self.prompt_node = prompt_node
        self.prompt_input = prompt_input
        self.rng = rng if rng is not None else random.Random()
        self._init_pool(pool=pool, client=client, url=url, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Any, pool: ComfyPool | None = None) -> ComfyImageBackend:
        """Build from :class:`sceneforge.config.Settings`; without a shared ``pool``, all ``comfy_urls`` form one."""
        return cls._build(
            settings,
            pool,
            Workflow.load(settings.workflow, kind="image"),
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

    async def generate(self, scene: int, prompt: str, dest: Path) -> ImageResult:
        """Run the workflow for scene ``scene`` and write its first image to ``dest``."""
        journal = JobJournal(Path(dest).parent, "image", scene)
        key = fingerprint({"prompt": prompt, **self.fingerprint()})
        prior = journal.load(key)
        if prior is not None:
            resumed = await resume_job(self.pool, prior)
            if resumed is not None:
                client, result = resumed
                await self._save_first_still(client, result, scene, dest)
                return ImageResult(Path(dest), {"image_seed": prior.get("seed")})

        graph, seed = self.workflow.prepare_image(
            prompt,
            negative=self.negative,
            seed=self.seed,
            rng=self.rng,
            width=self.width,
            height=self.height,
            prompt_node=self.prompt_node,
            prompt_input=self.prompt_input,
            filename_prefix=f"sceneforge/scene_{scene}",
        )

        async def job(client: ComfyClient) -> None:
            on_event = self._job_events(scene, client)

            def remember(prompt_id: str, client_id: str) -> None:
                journal.save(key, server=client.server, prompt_id=prompt_id, client_id=client_id, seed=seed)

            try:
                result = await client.run(graph, on_event=on_event, on_submit=remember)
            except JobTimeoutError:
                journal.clear()  # the client cancelled it: the retry must submit anew, not re-attach
                raise
            await self._save_first_still(client, result, scene, dest)

        moved = self._failover_warning(scene)

        try:
            await self.pool.run(job, priority=PRIORITY_IMAGE, on_failover=moved)
        except GenerationError as exc:
            exc.for_scene(scene, "image")
            raise
        return ImageResult(Path(dest), {"image_seed": seed})


    async def _save_first_still(self, client: ComfyClient, result: Any, scene: int, dest: Path) -> None:
        stills = result.still_images()
        if not stills:
            raise WorkflowError(
                f"scene {scene}: workflow {self.workflow.source} produced no image on {client.server} "
                f"(outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a SaveImage node"
            )
        await client.download(stills[0], dest)

