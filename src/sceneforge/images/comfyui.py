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

from ..comfy.client import ComfyClient
from ..comfy.workflow import Workflow
from ..errors import GenerationError, WorkflowError
from .base import ImageBackend, ImageResult, image_registry

__all__ = ["ComfyImageBackend"]


@image_registry.register("comfyui")
class ComfyImageBackend(ImageBackend):
    """Generate scene images with a ComfyUI workflow.

    ``seed=None`` draws a fresh seed per scene from ``rng`` (inject a seeded
    ``random.Random`` for reproducible runs); a fixed ``seed`` is used for every
    scene. ``client`` is built from ``url``/``headers``/``timeout`` unless given.
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
    ) -> None:
        self.workflow = workflow
        self.seed = seed
        self.width = width
        self.height = height
        self.negative = negative
        self.prompt_node = prompt_node
        self.prompt_input = prompt_input
        self.rng = rng if rng is not None else random.Random()
        # One client (one HTTP session) per backend instance; a later pool can hand in its own.
        self.client = client if client is not None else ComfyClient(url, headers=headers, timeout=timeout)
        self._started = False

    @classmethod
    def from_settings(cls, settings: Any) -> ComfyImageBackend:
        """Build from :class:`sceneforge.config.Settings` (first URL of ``comfy_urls``)."""
        headers = {k: v.get_secret_value() for k, v in settings.comfy_headers.items()}
        return cls(
            Workflow.load(settings.workflow, kind="image"),
            url=settings.comfy_urls[0],
            headers=headers or None,
            timeout=settings.comfy_timeout,
            seed=settings.seed,
            width=settings.width,
            height=settings.height,
            negative=settings.negative,
            prompt_node=settings.prompt_node,
            prompt_input=settings.prompt_input,
        )

    @property
    def server(self) -> str:
        """The server URL, credentials redacted."""
        return self.client.server

    async def start(self) -> None:
        """Health check, once per backend: :class:`ServerUnavailableError` when unreachable."""
        if self._started:
            return
        await self.client.system_stats()
        self._started = True

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

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "queued":
                self._event("job_queued", scene, server=self.server, prompt_id=data["prompt_id"])
            elif kind == "progress":
                self._event("job_progress", scene, server=self.server, prompt_id=data["prompt_id"],
                            node=data.get("node"), value=data.get("value"), max=data.get("max"))

        try:
            result = await self.client.run(graph, on_event=on_event)
            stills = result.still_images()
            if not stills:
                raise WorkflowError(
                    f"scene {scene}: workflow {self.workflow.source} produced no image on {self.server} "
                    f"(outputs of nodes {', '.join(result.outputs) or 'none'}); it needs a SaveImage node"
                )
            await self.client.download(stills[0], dest)
        except GenerationError as exc:
            exc.for_scene(scene, "image")
            raise
        return ImageResult(Path(dest), {"image_seed": seed})

    async def aclose(self) -> None:
        """Close the client's HTTP session."""
        await self.client.aclose()
