"""``sceneforge serve``: the HTTP service, a thin layer over the library (:mod:`sceneforge.pipeline`).

* :mod:`.app` - the FastAPI application: error answers, middlewares, the API page, static files.
* :mod:`.api` - the ``/api`` routes; :mod:`.files` - ``/files/{slug}/{path}`` (Range, never outside a topic).
* :mod:`.actions` - what a request does to a topic (submit, edit, re-roll, restore, preview, compose, delete).
* :mod:`.jobs` - the queue: one job per topic, ``serve_concurrency`` topics at once, one shared engine.
* :mod:`.runner` - one job with the library (a run, a re-roll, a preview, the final cut).
* :mod:`.store` - status and events kept in the topic's folder; :mod:`.events` - live SSE with replay.
* :mod:`.options` - a job's ``options`` checked into settings; :mod:`.auth` - token, address, body limit.
* :mod:`.webhooks` - signed notifications with backoff; :mod:`.views` - the JSON of topics and takes.
* :mod:`.server` - uvicorn with a shutdown that keeps ComfyUI jobs; :mod:`.service` - the parts together.

See ``docs/service.md``.
"""

from __future__ import annotations

from .app import create_app
from .models import JobStatus
from .service import Service

__all__ = ["create_app", "Service", "JobStatus"]
