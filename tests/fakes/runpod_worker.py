"""The handler of a fake worker-comfyui: runpod-workers/worker-comfyui 5.8.5 (commit d2a55723), ``handler.py``.

``handle(comfy, job_input, job_id, s3_put)`` does what ``handler(job)`` does against one (fake) ComfyUI:
``validate_input`` (``workflow`` required, ``images`` a list of ``{name, image}``), ``upload_images``
(base64, a ``data:...;base64,`` prefix allowed, to ``/upload/image``), ``queue_workflow`` (``POST
/prompt``; a refusal is "Workflow validation failed"), the wait for the end on ComfyUI's websocket
(``/ws?clientId=``, opened before the prompt is queued, until ``executing`` with ``node: null`` or an
``execution_error`` for the prompt), ``get_history`` (a prompt missing there is an error), then the
output loop: only each output node's ``images`` key,
``temp`` files skipped, each file from ``/view`` as ``{"filename", "type": "base64", "data"}`` or, with S3
configured, ``"s3_url"``; other keys (VideoHelperSuite's ``gifs``) are not returned. It answers
``{"images": [...], "errors"?: [...]}``, ``{"status": "success_no_images", "images": []}``, or
``{"error", "details"?}`` (RunPod then reports the job ``FAILED``).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from .comfy_server import FakeComfyServer

__all__ = ["handle", "default_comfy"]


def default_comfy() -> FakeComfyServer:
    """A fake ComfyUI that has every model a workflow names (a worker with its network volume)."""
    srv = FakeComfyServer()
    srv.accept_any_model = True
    return srv


async def _upload(http: aiohttp.ClientSession, comfy: str, images: list[dict[str, Any]]) -> list[str]:
    """``upload_images`` of handler.py: each ``{name, image}`` decoded and posted to ``/upload/image``."""
    errors = []
    for image in images:
        data = str(image["image"])
        data = data.split(",", 1)[1] if data.startswith("data:") and "," in data else data
        try:
            blob = base64.b64decode(data, validate=True)
        except ValueError as exc:
            errors.append(f"Error decoding base64 for {image.get('name', 'unknown')}: {exc}")
            continue
        form = aiohttp.FormData()
        form.add_field("image", blob, filename=str(image["name"]), content_type="image/png")
        form.add_field("overwrite", "true")
        async with http.post(f"{comfy}/upload/image", data=form) as resp:
            if resp.status != 200:
                errors.append(f"Error uploading {image['name']}: HTTP {resp.status}")
    return errors


async def handle(
    comfy: FakeComfyServer, job_input: dict[str, Any], job_id: str,
    s3_put: Callable[[str, str, bytes], str] | None,
) -> dict[str, Any]:
    """worker-comfyui's ``handler(job)``, against one fake ComfyUI."""
    workflow = job_input.get("workflow")
    if workflow is None:
        return {"error": "Missing 'workflow' parameter"}
    images = job_input.get("images")
    if images is not None and (not isinstance(images, list) or not all(
            isinstance(i, dict) and "name" in i and "image" in i for i in images)):
        return {"error": "'images' must be a list of objects with 'name' and 'image' keys"}
    client_id = uuid.uuid4().hex
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{comfy.url}/ws?clientId={client_id}") as ws:
        if images:
            upload_errors = await _upload(http, comfy.url, images)
            if upload_errors:
                return {"error": "Failed to upload one or more input images", "details": upload_errors}
        async with http.post(f"{comfy.url}/prompt", json={"prompt": workflow, "client_id": client_id}) as r:
            text = await r.text()
            if r.status != 200:
                return {"error": f"Workflow validation failed: {text[:500]}"}
            prompt_id = json.loads(text)["prompt_id"]
        if not await _wait(ws, prompt_id):
            return {"error": "Workflow monitoring loop exited without confirmation of completion or error."}
        async with http.get(f"{comfy.url}/history/{prompt_id}") as r:
            history = await r.json()
        if prompt_id not in history:
            return {"error": f"Prompt ID {prompt_id} not found in history after execution."}
        return await _collect(http, comfy, history[prompt_id], job_id, s3_put)


async def _wait(ws: aiohttp.ClientWebSocketResponse, prompt_id: str) -> bool:
    """The handler's websocket loop: ``True`` at ``executing(null)`` or an ``execution_error`` of the prompt."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue  # binary previews
        message = json.loads(msg.data)
        data = message.get("data") or {}
        if message.get("type") == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return True
        if message.get("type") == "execution_error" and data.get("prompt_id") == prompt_id:
            return True  # its details are read from the history entry's status messages
    return False


async def _collect(
    http: aiohttp.ClientSession, comfy: FakeComfyServer, entry: dict[str, Any], job_id: str,
    s3_put: Callable[[str, str, bytes], str] | None,
) -> dict[str, Any]:
    """The output loop of handler.py: ``images`` only, ``temp`` skipped, base64 or an S3 URL."""
    errors: list[str] = []
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        for kind, data in status.get("messages") or []:
            if kind == "execution_error":
                errors.append(f"Workflow execution error: Node Type: {data.get('node_type')}, "
                              f"Node ID: {data.get('node_id')}, Message: {data.get('exception_message')}")
    output_data: list[dict[str, Any]] = []
    for node_output in (entry.get("outputs") or {}).values():
        for info in node_output.get("images") or []:
            if info.get("type") == "temp":
                continue
            params = {"filename": info["filename"], "subfolder": info.get("subfolder", ""), "type": info.get("type")}
            async with http.get(f"{comfy.url}/view", params=params) as resp:
                if resp.status != 200:
                    errors.append(f"Failed to fetch image data for {info['filename']} from /view endpoint.")
                    continue
                blob = await resp.read()
            if s3_put is not None:
                output_data.append({"filename": info["filename"], "type": "s3_url",
                                    "data": s3_put(job_id, info["filename"], blob)})
            else:
                output_data.append({"filename": info["filename"], "type": "base64",
                                    "data": base64.b64encode(blob).decode("ascii")})
    result: dict[str, Any] = {}
    if output_data:
        result["images"] = output_data
    if errors:
        result["errors"] = errors
    if not output_data and errors:
        return {"error": "Job processing failed", "details": errors}
    if not output_data:
        result["status"] = "success_no_images"
        result["images"] = []
    return result
