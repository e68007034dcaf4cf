"""One HTTP contract (issue #18.2): every route's real answers, errors included, and every SSE event are
valid against the schema the service publishes at /openapi.json."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from PIL import Image
from service_helpers import offline, topic


class Contract:
    """The published document, and what the test saw of each route."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[tuple[str, str, int]] = set()
        self.templates = [(t, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", t) + "$")) for t in doc["paths"]]

    def template(self, path: str) -> str:
        path = path.split("?", 1)[0]
        matches = [t for t, rx in self.templates if rx.match(path)]
        assert matches, f"{path} is not in /openapi.json"
        return min(matches, key=lambda t: t.count("{"))  # the most literal one

    def validate(self, method: str, path: str, status: int, body: Any) -> None:
        template = self.template(path)
        responses = self.doc["paths"][template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template} answered {status}, which is not published"
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        errors = list(Draft202012Validator({**schema, "components": self.doc["components"]}).iter_errors(body))
        assert not errors, f"{method} {path} {status}: {[e.message for e in errors][:3]}"
        self.seen.add((template, method.lower(), status))

    def event(self, event: dict[str, Any]) -> None:
        schema = {"$ref": "#/components/schemas/StreamEvent", "components": self.doc["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(event))
        assert not errors, (event, [e.message for e in errors][:3])


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


async def test_every_answer_and_event_is_valid_against_the_published_schema(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_max_queued=1, serve_concurrency=1))
    status, doc = await svc.call("GET", "/openapi.json")
    assert status == 200
    api = Contract(doc)

    async def call(method: str, path: str, expect: int, **kw: Any) -> Any:
        status, body = await svc.call(method, path, **kw)
        assert status == expect, (method, path, status, body)
        api.validate(method, path, status, body)
        return body

    await call("GET", "/api/health", 200)
    await call("POST", "/api/topics", 202, body=topic("contract", 2))
    await call("POST", "/api/topics", 409, body=topic("contract", 2))
    await svc.wait("contract")
    await call("GET", "/api/topics", 200)
    state = await call("GET", "/api/topics/contract", 200)
    assert state["scenes"][0]["state"]["phase"] == "done"
    await call("POST", "/api/topics", 422, body={"topic": "bad", "scenes": [{"script": ""}]})
    await call("POST", "/api/topics", 400, data=b'{"topic": ')
    await call("POST", "/api/topics", 415, data=b"{}", headers={"Content-Type": "text/plain"})
    await call("POST", "/api/topics", 403, body=topic("x", 1), headers={"Origin": "https://evil.example"})
    await call("GET", "/api/topics", 421, headers={"Host": "evil.example"})
    await call("GET", "/api/topics/nope", 404)
    await call("PATCH", "/api/topics/contract/scenes/1", 202, body={"script": "A new first line."})
    await svc.wait("contract")
    await call("PATCH", "/api/topics/contract/scenes/9", 404, body={"script": "x"})
    await call("POST", "/api/topics/contract/scenes/1/regenerate", 202, body={"stage": "image", "seed": 7})
    await svc.wait("contract")
    await call("POST", "/api/topics/contract/scenes/1/regenerate", 422, body={"stage": "sound"})
    takes = await call("GET", "/api/topics/contract/scenes/1/takes", 200)
    first = takes["image"][0]["id"]
    await call("POST", f"/api/topics/contract/scenes/1/takes/image/{first}/restore", 200)
    await call("POST", "/api/topics/contract/scenes/1/takes/image/nope/restore", 404)
    await call("POST", "/api/topics/contract/references", 201, data=_png(), headers={"Content-Type": "image/png"})
    await call("POST", "/api/topics/contract/cancel", 409)
    await call("POST", "/api/topics/contract/preview", 202)
    await call("POST", "/api/topics/contract/compose", 409)  # the preview's job holds the topic
    await svc.wait("contract")
    # A full queue: one topic runs, one waits, the next is refused (429).
    await call("POST", "/api/topics", 202, body=topic("one", 3))
    await call("POST", "/api/topics", 202, body=topic("two", 1))
    await call("POST", "/api/topics", 429, body=topic("three", 1))
    await call("POST", "/api/topics/two/cancel", 200)
    await svc.wait("one")
    await call("DELETE", "/api/topics/one", 200)
    for event in await svc.stream("contract", after=0):
        api.event(event)

    routes = {(t, m) for t, methods in doc["paths"].items() if t.startswith("/api/") for m in methods}
    answered = {(t, m) for t, m, _ in api.seen} | {("/api/topics/{slug}/events", "get")}
    assert routes == answered, routes ^ answered  # every route was checked
    assert {s for _, _, s in api.seen} >= {200, 201, 202, 400, 403, 404, 409, 415, 421, 422, 429}
