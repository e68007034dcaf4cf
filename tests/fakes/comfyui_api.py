"""A fake SaladTechnologies comfyui-api in front of a fake ComfyUI (``comfy_server.py``), on 127.0.0.1.

Follows comfyui-api 1.18.0 (commit 4dfc930b): README ("Usage", "Response Format", "Image To Image
Workflows", "Probes") and ``src/server.ts`` / ``src/comfy.ts``:

* ``POST /prompt`` ``{"id"?, "prompt"}``: a ``LoadImage`` whose ``image`` is base64 gets it saved to
  ComfyUI's input folder first; a graph without a node taking ``filename_prefix`` is a ``400``
  ``{"error", "location": "prompt"}``, as is a graph ComfyUI refuses; otherwise it waits for the end
  and answers ``200`` ``{"id", "prompt", "images": [<base64>], "filenames": [...], "stats":
  {"comfy_execution": {"total": {"start", "end", "duration"}}, ...}}`` with **every** file of every
  output key (``images``, VideoHelperSuite's ``gifs``...), as ``getPromptOutputs`` reads them;
* ``GET /ready``: ``200 {"version", "status": "ready"}``, ``503`` when ``ready`` is False;
  ``GET /health``: ``200`` while the process runs;
* ``POST /interrupt`` ``{"id"}``: ``200 {"id", "interrupted": "success"}`` or ``404``.

Webhooks, S3 uploads and output conversion are not faked (sceneforge uses none of them).
Records: ``prompts`` (the bodies received), ``interrupts``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from .comfy_server import FakeComfyServer

__all__ = ["FakeComfyApi", "VERSION"]

VERSION = "1.18.0"


class FakeComfyApi:
    def __init__(self, comfy: FakeComfyServer) -> None:
        self.comfy = comfy
        self.ready = True
        self.prompts: list[dict[str, Any]] = []
        self.interrupts: list[str] = []
        self._running: dict[str, str] = {}  # api id -> ComfyUI prompt id
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def member_url(self) -> str:
        return f"comfyui-api+http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeComfyApi:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/health", self._health)
        app.router.add_post("/interrupt", self._interrupt)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ready(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"version": VERSION, "status": "ready"})
        return web.json_response({"version": VERSION, "status": "not ready"}, status=503)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION, "status": "healthy"})

    async def _interrupt(self, request: web.Request) -> web.Response:
        api_id = str((await request.json()).get("id"))
        self.interrupts.append(api_id)
        pid = self._running.get(api_id)
        if pid is None:
            return web.json_response({"id": api_id, "interrupted": "failed"}, status=404)
        self.comfy.runner.interrupt(pid)
        return web.json_response({"id": api_id, "interrupted": "success"})

    def _save_inputs(self, api_id: str, prompt: dict[str, Any]) -> None:
        """Base64 ``LoadImage`` inputs become files in ComfyUI's input folder (``preprocessNodes``)."""
        for nid, node in prompt.items():
            image = (node.get("inputs") or {}).get("image") if node.get("class_type") == "LoadImage" else None
            if isinstance(image, str) and len(image) > 64 and "." not in image[-6:]:
                blob = base64.b64decode(image, validate=True)
                name = f"{api_id}_{nid}.png"
                self.comfy.store.add(name, blob, "", "input")
                node["inputs"]["image"] = name

    async def _prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompts.append(copy.deepcopy(body))  # as received (the inputs are rewritten below)
        api_id = str(body.get("id") or uuid.uuid4())
        prompt = body.get("prompt")
        if not isinstance(prompt, dict):
            return web.json_response({"error": "prompt is required", "location": "prompt"}, status=400)
        try:
            self._save_inputs(api_id, prompt)
        except (binascii.Error, ValueError) as exc:
            return web.json_response({"error": str(exc), "location": "prompt"}, status=400)
        if not any("filename_prefix" in (n.get("inputs") or {}) for n in prompt.values()):
            return web.json_response({"error": 'Prompt must contain a node with a "filename_prefix" input, '
                                      'such as "SaveImage"', "location": "prompt"}, status=400)
        start = int(time.time() * 1000)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.comfy.url}/prompt", json={"prompt": prompt}) as r:
                if r.status != 200:
                    return web.json_response({"error": await r.text(), "location": "prompt"}, status=400)
                pid = (await r.json())["prompt_id"]
            self._running[api_id] = pid
            try:
                while pid not in self.comfy.history:
                    await asyncio.sleep(0.01)
                entry = self.comfy.history[pid]
                if (entry.get("status") or {}).get("status_str") == "error":
                    return web.json_response({"error": "Prompt execution failed", "id": api_id}, status=500)
                images, names = [], []
                for node in (entry.get("outputs") or {}).values():
                    for files in node.values():  # every output key, as comfy.ts reads them
                        for ref in files if isinstance(files, list) else []:
                            if not isinstance(ref, dict) or not ref.get("filename"):
                                continue  # e.g. SaveAnimatedWEBP's "animated" flags
                            async with http.get(f"{self.comfy.url}/view", params={
                                    "filename": ref["filename"], "subfolder": ref.get("subfolder", ""),
                                    "type": ref.get("type", "output")}) as v:
                                if v.status != 200:
                                    continue  # comfy.ts only warns about a file it cannot read
                                images.append(base64.b64encode(await v.read()).decode("ascii"))
                                names.append(ref["filename"])
            finally:
                self._running.pop(api_id, None)
        end = int(time.time() * 1000)
        stats = {"comfy_execution": {"total": {"start": start, "end": end, "duration": end - start}, "nodes": {}},
                 "preprocess_time": 0, "upload_time": 0, "total_time": end - start}
        return web.json_response({**body, "id": api_id, "prompt": prompt, "images": images, "filenames": names,
                                  "stats": stats})
