"""The FastAPI application: routes, error answers, security middlewares, the API page, static files.

Every error is sceneforge's own and answers with a JSON ``detail`` (plus ``problems``, one line each,
where the input was wrong); which status each error gets is :mod:`.problems`' one table, and the
403/413/415/421/401 of the middlewares come before any route (:mod:`.guard`, :mod:`.auth`).

``GET /`` and anything else not matched is left to ``service/static/`` (the review
page), when that folder exists; ``/fonts/`` serves the page's CJK web font. CORS is
off unless ``serve_cors_origins`` lists origins.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import (
    SceneforgeError,
    __version__,
)
from ..mcp.http import mount_mcp
from . import api, files, fonts
from .auth import BearerAuth, BodyLimit, send_json
from .docs import mount_docs
from .guard import RequestGuard
from .problems import error_response
from .service import Service

__all__ = ["create_app", "error_response", "STATIC_DIR"]

STATIC_DIR = Path(__file__).with_name("static")
log = logging.getLogger("sceneforge.service")


async def _sceneforge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SceneforgeError)
    return error_response(exc, request.app.state.service.out_dir)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        msg = next(str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid")
        return JSONResponse({"detail": f"not valid JSON: {msg}".rstrip(": ")}, status_code=400)
    problems = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        problems.append(f"{loc}: {e.get('msg', 'invalid')}")
    detail = problems[0] if len(problems) == 1 else f"{len(problems)} problems in the input"
    return JSONResponse({"detail": detail, "problems": problems}, status_code=422)


class Unexpected:
    """An error no route expected: logged with its traceback, answered as a JSON 500 (never a dropped
    connection); the topic is left as the queue's guarded transitions leave it: cancellable, deletable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if scope["type"] != "http" or started:
                raise
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            await send_json(send, 500, {"detail": f"the service failed unexpectedly ({type(exc).__name__}); "
                                                  "the topic can be cancelled or deleted"})


def create_app(service: Service) -> FastAPI:
    """The application for ``service``; its lifespan starts and stops the service."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            async with mcp_running:  # the MCP tools at /mcp (sceneforge.mcp.http)
                yield
        finally:
            await service.stop()

    app = FastAPI(title="sceneforge", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Narration, images and motion for planned video scenes: queue topics, edit and "
                              "re-roll single scenes, keep takes, follow progress live. See docs/service.md.")
    app.state.service = service
    app.add_exception_handler(SceneforgeError, _sceneforge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(api.router)
    app.include_router(files.router)
    app.include_router(fonts.router)
    mount_docs(app)
    mcp_running = mount_mcp(app, service)
    settings = service.settings
    # Added innermost first: CORS (outermost) answers preflights before the token is asked for.
    app.add_middleware(Unexpected)
    app.add_middleware(BodyLimit, limit=settings.serve_max_body)
    if settings.serve_token is not None:
        app.add_middleware(BearerAuth, token=settings.serve_token.get_secret_value())
    if settings.serve_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.serve_cors_origins),
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
    # Outermost: a request from another site's page, or by a name the service does not answer to, goes no further.
    app.add_middleware(RequestGuard, bind_host=settings.serve_host, allowed_hosts=settings.serve_allowed_hosts,
                       cors_origins=settings.serve_cors_origins)
    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app
