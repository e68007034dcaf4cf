"""Webhooks: the end of a job POSTed to the caller's URL, signed, retried with backoff (waits recorded,
never slept), and never in the way of the next job."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path

from service_helpers import LOCAL, offline, topic

from sceneforge.service.webhooks import SIGNATURE_HEADER

SECRET = "whsec-test-0123"


async def test_the_end_of_a_job_is_posted_signed_and_retried_with_backoff(start, receiver, tmp_path: Path):
    receiver.answers = [503, 500, 429]
    svc = await start(offline(tmp_path, webhook_secret=SECRET, serve_webhook_allow=LOCAL))
    await svc.submit({**topic("hooked", 1), "options": {"webhook_url": receiver.url}})
    await svc.wait("hooked")
    await svc.service.webhooks.drain()
    assert len(receiver.received) == 4
    ids = set()
    for headers, body in receiver.received:
        assert json.loads(body) == {"slug": "hooked", "status": "done", "error": None}
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
        assert headers["Content-Type"] == "application/json"
        # Standard Webhooks: HMAC-SHA256 over "id.timestamp.body", base64, "v1," first.
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        standard = "v1," + base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["webhook-signature"], standard)
        assert headers["webhook-timestamp"].isdigit()
        ids.add(headers["webhook-id"])
    assert len(ids) == 1  # one message, four attempts: a receiver drops the duplicates by its id
    assert svc.waits.waits == [1.0, 2.0, 4.0]  # recorded, not slept
    assert SECRET not in json.dumps([h for h, _ in receiver.received])


async def test_a_failed_job_reports_its_error_and_a_refusing_receiver_is_not_retried(start, receiver, dead_url,
                                                                                    tmp_path: Path):
    receiver.answers = [404]
    svc = await start(offline(tmp_path, comfy_urls=(dead_url,), serve_webhook_allow=LOCAL))  # images need a server: none listens there
    await svc.submit({**topic("fails", 1), "options": {"webhook_url": receiver.url, "workflow": "sd15",
                                                       "offline": False, "stages": ["image"]}})
    state = await svc.wait("fails")
    await svc.service.webhooks.drain()
    assert state["status"] == "failed"
    [(headers, body)] = receiver.received
    assert json.loads(body) == {"slug": "fails", "status": "failed", "error": state["error"]}
    assert SIGNATURE_HEADER not in headers  # no secret set: not signed
    assert "connection refused" in state["error"] and svc.waits.waits == []  # one attempt: 404 is final


async def test_a_hanging_receiver_never_holds_up_the_queue(start, receiver, tmp_path: Path):
    receiver.hold = hold = asyncio.Event()
    svc = await start(offline(tmp_path, serve_concurrency=1, serve_webhook_allow=LOCAL))
    await svc.submit({**topic("first", 1), "options": {"webhook_url": receiver.url}})
    await svc.submit(topic("second", 1))
    assert (await svc.wait("first"))["status"] == "done"
    assert (await svc.wait("second"))["status"] == "done"  # ran while the first's webhook still hangs
    assert len(receiver.received) == 1 and not hold.is_set()  # the first's delivery is still held
    hold.set()
    await svc.service.webhooks.drain()


async def test_a_cancelled_job_is_reported_too(start, receiver, comfy, tmp_path: Path):
    from service_helpers import with_comfy

    comfy.fault("hang")
    svc = await start(with_comfy(tmp_path, comfy, serve_webhook_allow=LOCAL))
    await svc.submit({**topic("called off", 1), "options": {"webhook_url": receiver.url}})
    await svc.stream("called-off", until_idle=False, stop=lambda e: e["kind"] == "job_queued")
    await svc.call("POST", "/api/topics/called-off/cancel")
    await svc.service.webhooks.drain()
    assert [json.loads(b) for _, b in receiver.received] == [{"slug": "called-off", "status": "cancelled",
                                                              "error": None}]
