"""HTTP and websocket handlers of the fake ComfyUI server (a mixin of :class:`FakeComfyServer`).

Answers follow the recorded shapes in ``comfyui/samples``: bodies, status codes and
the odd ones (500 text/plain for invalid JSON, empty 400/403/404 bodies on /view).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from . import comfy_hostile as hostile
from .comfy_outputs import content_type
from .comfy_validation import MODEL_INPUTS, error_body, is_link, validate_prompt

__all__ = ["ComfyRoutes"]

_STATS = {
    "system": {
        "os": "linux", "ram_total": 25276063744, "ram_free": 24359391232, "comfyui_version": "0.33.0",
        "required_frontend_version": "1.49.6", "installed_templates_version": "0.11.44",
        "required_templates_version": "0.11.44", "comfy_package_versions": [], "python_version": "3.11.7",
        "pytorch_version": "2.13.0+cpu", "embedded_python": False, "deploy_environment": "local-git",
        "argv": ["main.py", "--cpu"],
    },
    "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0,
                 "torch_vram_total": 0, "torch_vram_free": 0}],
}
_FEATURES = {"supports_preview_metadata": True, "supports_model_type_tags": True, "max_upload_size": 104857600,
             "extension": {"manager": {"supports_v4": True}}, "node_replacements": True, "assets": False}
_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"


def _bad_name(value: str) -> bool:
    return ".." in value or value.startswith("/") or "\\" in value or "\x00" in value


class ComfyRoutes:
    """Route table, middleware and handlers. Mixed into :class:`FakeComfyServer`, whose
    ``__init__`` sets the state used here (store, runner, logs, faults, sockets)."""

    def _routes(self, p: str) -> list[web.AbstractRouteDef]:
        def answer(make: Callable[[], Any]) -> Callable[[web.Request], Any]:
            async def handler(request: web.Request) -> web.Response:
                return web.json_response(make())
            return handler

        return [
            web.get(p + "/system_stats", answer(lambda: _STATS)),
            web.get(p + "/features", answer(lambda: _FEATURES)),
            web.get(p + "/object_info", answer(self.object_info)),
            web.get(p + "/object_info/{cls}", self._object_info_one),
            web.get(p + "/models", answer(lambda: list(self.models))),
            web.get(p + "/models/{folder}", self._models_folder),
            web.get(p + "/prompt", answer(lambda: {"exec_info": {"queue_remaining": self.runner.remaining()}})),
            web.post(p + "/prompt", self._post_prompt),
            web.get(p + "/queue", answer(self.runner.queue_view)),
            web.post(p + "/queue", self._post_queue),
            web.post(p + "/interrupt", self._post_interrupt),
            web.get(p + "/history", self._get_history),
            web.get(p + "/history/{prompt_id}", self._get_history_one),
            web.post(p + "/history", self._post_history),
            web.get(p + "/view", self._view),
            web.post(p + "/upload/image", self._upload),
            web.post(p + "/free", self._empty_ok),
            web.get(p + "/ws", self._ws),
        ]

    async def _empty_ok(self, request: web.Request) -> web.Response:
        return web.Response()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers)})
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("Host"):
            return web.Response(status=403)
        for key, value in self.require_headers.items():
            if request.headers.get(key) != value:
                return web.Response(status=401)
        if self.require_basic_auth is not None:
            user, pw = self.require_basic_auth
            expect = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
            if request.headers.get("Authorization") != expect:
                return web.Response(status=401)
        bad_json = hostile.json_fault(self, request)
        if bad_json is not None:
            return await bad_json
        return await handler(request)

    async def _object_info_one(self, request: web.Request) -> web.Response:
        cls = request.match_info["cls"]
        info = self.object_info()
        return web.json_response({cls: info[cls]} if cls in info else {})

    async def _models_folder(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in self.models:
            return web.Response(status=404)
        return web.json_response(self.models[folder])

    async def _post_prompt(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            self.prompts.append(raw)
            return web.Response(status=500, text=_TROUBLE)
        self.prompts.append(body)
        number = next(self._number)  # advances on rejected prompts too
        if self.take_fault("prompt_500"):
            return web.Response(status=500, text=_TROUBLE)
        if not isinstance(body, dict) or "prompt" not in body:
            return web.json_response(error_body("no_prompt", "No prompt provided", "No prompt provided"), status=400)
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return web.Response(status=500, text=_TROUBLE)
        pid = body.get("prompt_id")
        if pid is not None:
            try:
                ok = str(uuid.UUID(str(pid))) == pid
            except ValueError:
                ok = False
            if not ok:
                return web.json_response(error_body(
                    "invalid_prompt_id", "prompt_id must be a valid UUID",
                    "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the "
                    "server generate one"), status=400)
        if self.accept_any_model:
            self._learn_models(prompt)
        fault = self.take_fault("node_errors")
        if fault:
            return web.json_response(self._fake_node_errors(prompt), status=400)
        result = validate_prompt(prompt, self.object_info(), self.store.exists_input)
        if result.error is not None:
            return web.json_response(result.error, status=400)
        if "number" in body and isinstance(body["number"], (int, float)):
            number = body["number"]
        elif body.get("front"):
            number = -number
        pid = pid or str(uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        extra.update({"client_id": body.get("client_id"), "create_time": int(time.time() * 1000)})
        self.runner.enqueue(pid, number, prompt, extra, result.outputs)
        return web.json_response({"prompt_id": pid, "number": number, "node_errors": result.node_errors})

    def _learn_models(self, prompt: dict[str, Any]) -> None:
        for node in prompt.values():
            if not isinstance(node, dict):
                continue
            for name, value in (node.get("inputs") or {}).items():
                folder = MODEL_INPUTS.get((node.get("class_type"), name))
                if folder and isinstance(value, str) and value not in self.models[folder]:
                    self.models[folder].append(value)

    def _fake_node_errors(self, prompt: dict[str, Any]) -> dict[str, Any]:
        for nid, node in prompt.items():
            for name, value in (node.get("inputs") or {}).items():
                if isinstance(value, str) and not is_link(value):
                    err = {"type": "value_not_in_list", "message": "Value not in list",
                           "details": f"{name}: '{value}' not in []",
                           "extra_info": {"input_name": name, "input_config": [[], {}], "received_value": value}}
                    node_errors = {nid: {"errors": [err], "dependent_outputs": [],
                                         "class_type": node.get("class_type")}}
                    return error_body("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                      node_errors=node_errors)
        return error_body("prompt_outputs_failed_validation", "Prompt outputs failed validation")

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if isinstance(body, dict):
            if body.get("clear"):
                await self.runner.clear_pending()
            for pid in body.get("delete") or []:
                self.queue_deletes.append(str(pid))
                await self.runner.delete(str(pid))
        return web.Response()

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = {}
        self.interrupts.append(body if isinstance(body, dict) else {})
        pid = body.get("prompt_id") if isinstance(body, dict) else None
        self.runner.interrupt(pid)
        return web.Response()

    async def _get_history(self, request: web.Request) -> web.Response:
        items = list(self.history.items())
        max_items = request.query.get("max_items")
        if max_items is not None:
            n = int(max_items)
            if "offset" in request.query:
                off = int(request.query["offset"])
                items = items[off:off + n]
            else:
                items = items[-n:] if n else []
        return web.json_response(dict(items))

    async def _get_history_one(self, request: web.Request) -> web.Response:
        if self.take_fault("history_500"):
            return web.Response(status=500, text=_TROUBLE)
        pid = request.match_info["prompt_id"]
        entry = self.history.get(pid)
        self.history_requests.append((pid, entry is not None))
        return web.json_response({pid: entry} if entry is not None else {})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for pid in body.get("delete") or []:
            self.history.pop(pid, None)
        return web.Response()

    async def _view(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        filename, subfolder, kind = q.get("filename", ""), q.get("subfolder", ""), q.get("type", "output")
        if filename.endswith("]") and " [" in filename:
            filename, _, kind = filename[:-1].rpartition(" [")
        if kind not in ("output", "input", "temp"):
            return web.Response(status=400)
        if not filename or _bad_name(filename):
            return web.Response(status=400)
        if _bad_name(subfolder):
            return web.Response(status=403)
        if self.take_fault("view_404"):
            return web.Response(status=404)
        data = self.store.get(kind, subfolder, filename.rsplit("/", 1)[-1])
        if data is None:
            return web.Response(status=404)
        headers = {"Content-Type": content_type(filename), "Content-Disposition": f'filename="{filename}"',
                   "X-Content-Type-Options": "nosniff"}
        bad_view = hostile.view_fault(self, request, data, headers)
        if bad_view is not None:
            return await bad_view
        if self.take_fault("view_truncated"):
            resp = web.StreamResponse(headers=headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()  # the rest never comes
            return resp
        return web.Response(body=data, headers=headers)

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if self.take_fault("upload_400") or not isinstance(image, web.FileField):
            return web.Response(status=400)
        subfolder = str(form.get("subfolder") or "")
        kind = str(form.get("type") or "input")
        overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
        name = image.filename or "upload"
        if kind not in ("input", "temp", "output") or _bad_name(subfolder) or _bad_name(name) or "/" in name:
            return web.Response(status=400)
        final = self.store.upload(name, image.file.read(), subfolder, kind, overwrite)
        return web.json_response({"name": final, "subfolder": subfolder, "type": kind})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        cid = request.query.get("clientId") or uuid.uuid4().hex
        self.ws_connects.append({"client_id": cid, "headers": dict(request.headers)})
        self.sockets[cid] = ws  # the newest socket of a clientId wins
        flood = hostile.ws_flood(self, ws)
        try:
            status = {"status": {"exec_info": {"queue_remaining": self.runner.remaining()}}, "sid": cid}
            await ws.send_json({"type": "status", "data": status})
            node = self.runner.current_node_for(cid)
            if node is not None:
                # The reconnect quirk (§4.3): the current node, without prompt_id.
                await ws.send_json({"type": "executing", "data": {"node": node}})
            first = True
            async for msg in ws:
                if first and msg.type == WSMsgType.TEXT:
                    try:
                        hello = json.loads(msg.data)
                    except ValueError:
                        hello = None
                    if isinstance(hello, dict) and hello.get("type") == "feature_flags":
                        await ws.send_json({"type": "feature_flags", "data": _FEATURES})
                first = False
        finally:
            # Faithful quirk: ComfyUI pops the clientId even when a newer socket took it over.
            self.sockets.pop(cid, None)
            if flood is not None:
                flood.cancel()
        return ws
