"""The interactive API page at ``/docs``, served with no internet.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, which a machine without
internet (or a careful operator) cannot use. The page here is the same Swagger UI,
its JavaScript and CSS served by this service from the ``fastapi-offline`` wheel
(MIT, a dependency of ~0.8 MB that ships Swagger UI 5 and depends only on FastAPI):
no copy of minified JavaScript is kept in this repository, and updating Swagger UI
is a version bump. Only its static files are used, not its replacement app class.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["mount_docs", "swagger_assets", "DOCS_URL", "ASSETS_URL"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def swagger_assets() -> Path:
    """The folder holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``favicon.png``."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs`` (Swagger UI on ``/openapi.json``) and its assets to ``app``."""
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_assets()), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
