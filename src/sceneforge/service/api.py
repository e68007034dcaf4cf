"""The ``/api`` routes: thin calls into :class:`.actions.TopicActions` and :class:`.jobs.JobQueue`.

Errors are sceneforge's own (:mod:`sceneforge.errors`, :mod:`.problems`); :func:`.problems.error_response`
turns each into its status and a JSON ``detail`` (and ``problems``, one line each,
for bad input), so the routes below hold no error handling of their own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from .. import ConfigError, SceneValidationError, __version__
from ..pipeline import decode_scene_json
from .events import SSEResponse, sse_stream
from .models import (
    Accepted,
    Deleted,
    Detail,
    Health,
    Problems,
    ReferenceOut,
    RegenerateRequest,
    SceneEdit,
    StreamEvent,
    TakesOut,
    TopicState,
    TopicSummary,
)
from .problems import NotJson
from .service import Service
from .store import TopicRecord
from .views import takes_view, topic_answer

__all__ = ["router"]

# Declares the Bearer scheme in /openapi.json (the API page's "Authorize" button); the
# check itself is the BearerAuth middleware, which also guards /files.
_bearer = HTTPBearer(auto_error=False, description="SCENEFORGE_SERVE_TOKEN, needed off loopback")
router = APIRouter(prefix="/api", dependencies=[Depends(_bearer)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problems, "description": "The body is not JSON"},
    401: {"model": Detail, "description": "A token is needed (off loopback, or when one is set)"},
    403: {"model": Detail, "description": "A change sent by another site's page (Origin)"},
    404: {"model": Detail, "description": "No such topic, scene or take"},
    409: {"model": Detail, "description": "The topic has a job queued or running, or another run holds it"},
    413: {"model": Detail, "description": "The body is larger than serve_max_body"},
    415: {"model": Detail, "description": "The body is not application/json"},
    421: {"model": Detail, "description": "A Host the service does not answer to"},
    422: {"model": Problems, "description": "Bad input: one line per problem"},
    429: {"model": Detail, "description": "The queue is full, or the service is stopping (Retry-After)"},
    500: {"model": Detail, "description": "An unexpected error (logged); the topic stays cancellable"},
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


def _body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """The request body's schema for /openapi.json (bodies are read by hand: any content type is JSON)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(), "example": example}}}}


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


#: The running service, for a route (FastAPI's dependency: routes never reach into the app themselves).
ServiceDep = Annotated[Service, Depends(_service)]


def _accepted(record: TopicRecord) -> Accepted:
    return Accepted(slug=record.slug, status=record.status)


#: Topics of more scenes than this are answered from a thread.
_BIG_TOPIC = 500
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
async def health() -> Health:
    """The service answers."""
    return Health(version=__version__)


@router.get("/topics", response_model=list[TopicSummary], tags=["topics"], responses=_ERRORS)
async def list_topics(service: ServiceDep) -> list[TopicSummary]:
    """Every topic under ``--out`` (the most recently changed first) with its status and progress."""
    records = await asyncio.to_thread(service.jobs.all)  # (a scan of --out: never on the loop)
    return [TopicSummary.model_validate(r.summary()) for r in records]


@router.post("/topics", status_code=202, response_model=Accepted, tags=["topics"], responses=_ERRORS,
             openapi_extra={"requestBody": _SUBMIT_BODY})
async def submit_topic(request: Request, service: ServiceDep) -> Accepted:
    """Submit a scene file's JSON (a list of scenes or ``{"topic", "scenes"}``, with optional ``options``).

    Everything is checked first (422 with every problem, nothing written); then the scenes are
    saved and the topic's run queued. 409 while the topic has a job; 429 when the queue is full.
    The body is a scene file: it is read by the library's own decoder, so it gets exactly the
    checks and lines of ``sceneforge run``.
    """
    record = await service.actions.submit(await _read_json(request))
    return _accepted(record)


@router.get("/topics/{slug}", response_model=TopicState, tags=["topics"], responses=_ERRORS)
async def get_topic(slug: str, service: ServiceDep) -> Response:
    """The topic: status, error, progress and its scenes with the URLs of their files and their state."""
    record = service.jobs.get(slug)
    layout = service.store.layout(slug)
    states = service.jobs.scene_states
    if record.scene_count > _BIG_TOPIC:  # a big topic's first read takes long: never on the loop
        return Response(await asyncio.to_thread(topic_answer, record, layout, states), media_type="application/json")
    return Response(topic_answer(record, layout, states), media_type="application/json")


@router.delete("/topics/{slug}", response_model=Deleted, tags=["topics"], responses=_ERRORS)
async def delete_topic(slug: str, service: ServiceDep) -> Deleted:
    """Remove the topic and its files (409 while it has a job: cancel it first)."""
    await service.actions.delete(slug)
    return Deleted(slug=slug)


@router.patch("/topics/{slug}/scenes/{n}", status_code=202, response_model=Accepted, tags=["scenes"],
              responses=_ERRORS, openapi_extra=_body(SceneEdit, {"script": "A new line."}))
async def edit_scene(slug: str, n: int, request: Request, service: ServiceDep) -> Accepted:
    """Save scene fields (``null`` removes one) and queue the work they invalidate: a script edit remakes
    only that scene's narration, an image-prompt edit its image and then its motion. The fields get the
    checks of a scene file (the same lines as ``sceneforge run``)."""
    changes = await _read_json(request)
    if not isinstance(changes, dict):
        raise ConfigError("the body must be an object of scene fields, e.g. {\"script\": \"...\"}")
    return _accepted(await service.actions.edit(slug, n, changes))


@router.post("/topics/{slug}/scenes/{n}/regenerate", status_code=202, response_model=Accepted, tags=["scenes"],
             responses=_ERRORS)
async def regenerate(slug: str, n: int, body: RegenerateRequest, service: ServiceDep) -> Accepted:
    """A new take of the scene's audio, image or motion, with ``seed`` pinned or a new random seed
    (an image's motion is remade with it)."""
    return _accepted(await service.actions.regenerate(slug, n, body.stage, body.seed))


@router.get("/topics/{slug}/scenes/{n}/takes", response_model=TakesOut, tags=["scenes"], responses=_ERRORS)
async def takes(slug: str, n: int, service: ServiceDep) -> TakesOut:
    """Every take of the scene's assets, oldest first; ``current`` marks the one in use."""
    return TakesOut.model_validate(takes_view(service.store.layout(slug), await service.actions.takes(slug, n)))


@router.post("/topics/{slug}/scenes/{n}/takes/{stage}/{take_id}/restore", response_model=TakesOut,
             tags=["scenes"], responses=_ERRORS)
async def restore(slug: str, n: int, stage: str, take_id: str, service: ServiceDep) -> TakesOut:
    """Make an earlier take current again; ``scenes.json`` points at it. Answers the scene's takes."""
    await service.actions.restore(slug, n, stage, take_id)
    return TakesOut.model_validate(takes_view(service.store.layout(slug), await service.actions.takes(slug, n)))


@router.post("/topics/{slug}/references", status_code=201, response_model=ReferenceOut, tags=["scenes"],
             responses=_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/png": {"schema": {"type": "string", "format": "binary"}},
                 "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                 "image/webp": {"schema": {"type": "string", "format": "binary"}}}}})
async def add_reference(slug: str, request: Request, service: ServiceDep) -> ReferenceOut:
    """Upload a reference image (a character to keep) to the topic; answers the value for a scene's or the
    topic's ``reference_image`` and its URL. Then PATCH a scene with it."""
    value = await service.actions.add_reference(slug, await request.body())
    return ReferenceOut(reference_image=value, url=f"/files/{slug}/{value}")


@router.post("/topics/{slug}/cancel", response_model=Accepted, tags=["topics"], responses=_ERRORS)
async def cancel(slug: str, service: ServiceDep) -> Accepted:
    """Cancel the queued or running job; a running one's ComfyUI jobs are removed from their servers."""
    return _accepted(await service.jobs.cancel(slug))


@router.post("/topics/{slug}/preview", status_code=202, response_model=Accepted, tags=["topics"],
             responses=_ERRORS)
async def preview(slug: str, service: ServiceDep) -> Accepted:
    """Render ``preview.mp4`` and ``contact_sheet.png`` in the background (a ``preview_done`` event has their URLs)."""
    return _accepted(await service.actions.render(slug, "preview"))


_SSE = {"text/event-stream": {"schema": {"type": "string", "description": "SSE messages: an 'id' line and one "
                                         "'data' line holding a StreamEvent (see its schema)"},
                              "x-data-schema": {"$ref": "#/components/schemas/StreamEvent"}}}


@router.post("/topics/{slug}/compose", status_code=202, response_model=Accepted, tags=["topics"],
             responses=_ERRORS)
async def compose(slug: str, service: ServiceDep) -> Accepted:
    """Render the final cut, ``final.mp4`` and ``cover.jpg``, in the background (a ``compose_done`` event has
    their URLs)."""
    return _accepted(await service.actions.render(slug, "compose"))



@router.get("/topics/{slug}/events", tags=["topics"], responses={
    200: {"content": _SSE, "description": "Server-Sent Events; each data line is a StreamEvent",
          "model": StreamEvent}, **{k: v for k, v in _ERRORS.items() if k != 422}})
async def events(slug: str, service: ServiceDep,
                 last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
                 after: Annotated[int | None, Query(ge=0, description="Like Last-Event-ID")] = None,
                 until: Annotated[str | None, Query(pattern="^idle$",
                                                    description="'idle': end once no job is queued or running")] = None,
                 ) -> StreamingResponse:
    """Every event of the topic's runs and its status changes, live; ``Last-Event-ID`` replays what was missed.
    Start from a topic's answer's ``last_event_id`` to follow it from that state."""
    service.jobs.get(slug)
    stream = sse_stream(slug, last_event_id if last_event_id is not None else after or 0, service.store, service.hub,
                        idle=lambda: not service.jobs.busy(slug), until_idle=until == "idle",
                        keepalive=service.keepalive)
    return SSEResponse(stream, send_timeout=service.send_timeout,
                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
