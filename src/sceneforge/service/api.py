"""The ``/api`` routes: thin calls into :class:`.actions.TopicActions` and :class:`.jobs.JobQueue`.

Errors are sceneforge's own (:mod:`sceneforge.errors`); :func:`.app.error_response`
turns each into its status and a JSON ``detail`` (and ``problems``, one line each,
for bad input), so the routes below hold no error handling of their own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError

from .. import ConfigError, SceneValidationError, __version__
from ..pipeline import decode_scene_json
from .events import SSEResponse, sse_stream
from .models import Accepted, Health, Problems, RegenerateRequest, SceneEdit, TakesOut, TopicState, TopicSummary
from .service import Service
from .views import scene_count, takes_view, topic_view

__all__ = ["router", "NotJson"]

# Declares the Bearer scheme in /openapi.json (the API page's "Authorize" button); the
# check itself is the BearerAuth middleware, which also guards /files.
_bearer = HTTPBearer(auto_error=False, description="SCENEFORGE_SERVE_TOKEN, needed off loopback")
router = APIRouter(prefix="/api", dependencies=[Depends(_bearer)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problems, "description": "The body is not JSON"},
    404: {"model": Problems, "description": "No such topic or scene"},
    409: {"model": Problems, "description": "The topic has a job queued or running"},
    422: {"model": Problems, "description": "Bad input: one line per problem"},
}
_SUBMIT_BODY = {
    "required": True,
    "content": {"application/json": {
        "schema": {"oneOf": [
            {"type": "array", "items": {"type": "object"}, "description": "A list of scenes"},
            {"type": "object", "required": ["scenes"], "properties": {
                "topic": {"type": "string"}, "scenes": {"type": "array", "items": {"type": "object"}},
                "options": {"type": "object", "description": "stages, motion, tts, voice, workflow, "
                            "motion_workflow, seed, webhook_url, ... (per-job run settings)"}}},
        ]},
        "example": {"topic": "요즘 AI 이야기", "scenes": [{"script": "요즘 AI 얘기 너무 많이 나오죠?",
                                                         "image_prompt": "a robot reading news"}],
                    "options": {"stages": ["audio", "image"], "voice": "ko-KR-SunHiNeural"}},
    }},
}


class NotJson(SceneValidationError):
    """A request body that is not JSON text at all (400, not 422)."""


def _body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """The request body's schema for /openapi.json (bodies are read by hand: any content type is JSON)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(), "example": example}}}}


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], data: Any) -> M:
    """``data`` checked as ``model``; ConfigError (422) with one line per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _accepted(slug: str, status: str) -> JSONResponse:
    return JSONResponse({"slug": slug, "status": status}, status_code=202)


#: Bodies above this many bytes are decoded in a thread (a 5 MB body takes seconds: nothing else may wait).
_BIG_BODY = 256 * 1024


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        if len(raw) > _BIG_BODY:
            return await asyncio.to_thread(decode_scene_json, raw)
        return decode_scene_json(raw)
    except SceneValidationError as exc:
        try:
            json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise NotJson(exc.problems) from None
        except (ValueError, RecursionError):
            pass
        raise


@router.get("/health", response_model=Health, tags=["service"])
async def health() -> dict[str, str]:
    """The service answers."""
    return {"status": "ok", "version": __version__}


@router.get("/topics", response_model=list[TopicSummary], tags=["topics"])
async def list_topics(request: Request) -> JSONResponse:
    """Every topic under ``--out`` (the most recently changed first) with its status and progress."""
    return JSONResponse([r.summary() for r in _service(request).jobs.all()])


@router.post("/topics", status_code=202, response_model=Accepted, tags=["topics"], responses=_ERRORS,
             openapi_extra={"requestBody": _SUBMIT_BODY})
async def submit_topic(request: Request) -> JSONResponse:
    """Submit a scene file's JSON (a list of scenes or ``{"topic", "scenes"}``, with optional ``options``).

    Everything is checked first (422 with every problem, nothing written); then the scenes are
    saved and the topic's run queued. 409 while the topic has a job; 429 when the queue is full.
    """
    record = await _service(request).actions.submit(await _read_json(request))
    return _accepted(record.slug, record.status.value)


@router.get("/topics/{slug}", response_model=TopicState, tags=["topics"], responses=_ERRORS)
async def get_topic(slug: str, request: Request) -> Response:
    """The topic: status, error, progress and its scenes with the URLs of their files."""
    service = _service(request)
    record = service.jobs.get(slug)
    record.scene_count = scene_count(service.store.layout(slug))  # (parsed once per version of the file)
    return Response(topic_view(record, service.store.layout(slug), service.jobs.scene_states(record)),
                    media_type="application/json")


@router.delete("/topics/{slug}", tags=["topics"], responses=_ERRORS)
async def delete_topic(slug: str, request: Request) -> dict[str, Any]:
    """Remove the topic and its files (409 while it has a job: cancel it first)."""
    await _service(request).actions.delete(slug)
    return {"slug": slug, "deleted": True}


@router.patch("/topics/{slug}/scenes/{n}", status_code=202, response_model=Accepted, tags=["scenes"],
              responses=_ERRORS, openapi_extra=_body(SceneEdit, {"script": "A new line."}))
async def edit_scene(slug: str, n: int, request: Request) -> JSONResponse:
    """Save scene fields (``null`` removes one) and queue the work they invalidate: a script edit remakes
    only that scene's narration, an image-prompt edit its image and then its motion."""
    changes = await _read_json(request)
    if not isinstance(changes, dict):
        raise ConfigError("the body must be an object of scene fields, e.g. {\"script\": \"...\"}")
    record = await _service(request).actions.edit(slug, n, changes)
    return _accepted(record.slug, record.status.value)


@router.post("/topics/{slug}/scenes/{n}/regenerate", status_code=202, response_model=Accepted, tags=["scenes"],
             responses=_ERRORS, openapi_extra=_body(RegenerateRequest, {"stage": "image", "seed": 1234}))
async def regenerate(slug: str, n: int, request: Request) -> JSONResponse:
    """A new take of the scene's audio, image or motion, with ``seed`` pinned or a new random seed
    (an image's motion is remade with it)."""
    body = _model(RegenerateRequest, await _read_json(request))
    record = await _service(request).actions.regenerate(slug, n, body.stage, body.seed)
    return _accepted(record.slug, record.status.value)


@router.get("/topics/{slug}/scenes/{n}/takes", response_model=TakesOut, tags=["scenes"], responses=_ERRORS)
async def takes(slug: str, n: int, request: Request) -> dict[str, Any]:
    """Every take of the scene's assets, oldest first; ``current`` marks the one in use."""
    service = _service(request)
    return takes_view(service.store.layout(slug), await service.actions.takes(slug, n))


@router.post("/topics/{slug}/scenes/{n}/takes/{stage}/{take_id}/restore", response_model=TakesOut,
             tags=["scenes"], responses=_ERRORS)
async def restore(slug: str, n: int, stage: str, take_id: str, request: Request) -> dict[str, Any]:
    """Make an earlier take current again; ``scenes.json`` points at it. Answers the scene's takes."""
    service = _service(request)
    await service.actions.restore(slug, n, stage, take_id)
    return takes_view(service.store.layout(slug), await service.actions.takes(slug, n))


@router.post("/topics/{slug}/references", status_code=201, tags=["scenes"], responses=_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/png": {"schema": {"type": "string", "format": "binary"}},
                 "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                 "image/webp": {"schema": {"type": "string", "format": "binary"}}}}})
async def add_reference(slug: str, request: Request) -> JSONResponse:
    """Upload a reference image (a character to keep) to the topic; answers the value for a scene's or the
    topic's ``reference_image`` and its URL. Then PATCH a scene with it."""
    service = _service(request)
    value = await service.actions.add_reference(slug, await request.body())
    return JSONResponse({"reference_image": value, "url": f"/files/{slug}/{value}"}, status_code=201)


@router.post("/topics/{slug}/cancel", response_model=Accepted, tags=["topics"], responses=_ERRORS)
async def cancel(slug: str, request: Request) -> dict[str, Any]:
    """Cancel the queued or running job; a running one's ComfyUI jobs are removed from their servers."""
    record = await _service(request).jobs.cancel(slug)
    return {"slug": record.slug, "status": record.status.value}


@router.post("/topics/{slug}/preview", status_code=202, response_model=Accepted, tags=["topics"],
             responses=_ERRORS)
async def preview(slug: str, request: Request) -> JSONResponse:
    """Render ``preview.mp4`` and ``contact_sheet.png`` in the background (a ``preview_done`` event has their URLs)."""
    record = await _service(request).actions.preview(slug)
    return _accepted(record.slug, record.status.value)


@router.get("/topics/{slug}/events", tags=["topics"], responses={
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}, 404: _ERRORS[404]})
async def events(slug: str, request: Request,
                 last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
                 after: Annotated[int | None, Query(ge=0, description="Like Last-Event-ID")] = None,
                 until: Annotated[str | None, Query(pattern="^idle$",
                                                    description="'idle': end once no job is queued or running")] = None,
                 ) -> StreamingResponse:
    """Every event of the topic's runs and its status changes, live; ``Last-Event-ID`` replays what was missed."""
    service = _service(request)
    service.jobs.get(slug)
    stream = sse_stream(slug, last_event_id if last_event_id is not None else after or 0, service.store, service.hub,
                        idle=lambda: not service.jobs.busy(slug), until_idle=until == "idle",
                        keepalive=service.keepalive)
    return SSEResponse(stream, send_timeout=service.send_timeout,
                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
