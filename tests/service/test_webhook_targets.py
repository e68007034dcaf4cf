"""Issue #17, item 2: a webhook never points back into the service, its machine or its network (unless the
operator allows a host or network, and never at the service itself), is checked again after DNS at send, and
never shows its credentials."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from service_helpers import LOCAL, Receiver, offline, topic, with_comfy

from sceneforge.errors import ConfigError
from sceneforge.service.targets import GuardedResolver, TargetRefused, WebhookTargets
from sceneforge.service.webhooks import WebhookSender

INSIDE = ["http://[::1]:9/x", "http://0x7f000001:9/x", "http://2130706433/x", "http://127.1/x",
          "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x", "http://192.168.1.1:8188/interrupt",
          "http://localhost:8188/interrupt", "http://0.0.0.0:8188/", "http://[::ffff:127.0.0.1]:9/"]


async def test_private_loopback_and_link_local_targets_are_422_naming_the_field(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    for url in INSIDE:
        body = await svc.submit({**topic("t", 1), "options": {"webhook_url": url}}, expect=422)
        assert body["problems"][0].startswith("options.webhook_url:") and "--webhook-allow" in body["detail"], body
    assert not (svc.out / "t").exists()


async def test_the_service_itself_is_refused_even_when_its_address_is_allowed(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_webhook_allow=("127.0.0.0/8", "localhost")))
    for url in (f"{svc.url}/api/topics/other/cancel", svc.url.replace("127.0.0.1", "localhost") + "/api/health",
                svc.url.replace("127.0.0.1", "127.0.0.2") + "/x"):
        body = await svc.submit({**topic("loop", 1), "options": {"webhook_url": url}}, expect=422)
        assert "is this service itself" in body["detail"], (url, body)


async def test_any_case_scheme_is_valid_and_credentials_never_show(start, receiver: Receiver, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture):
    svc = await start(offline(tmp_path, serve_webhook_allow=LOCAL))
    url = receiver.url.replace("http://", "HTTP://user:s3cret-pass@")
    receiver.answers = [404]
    await svc.submit({**topic("creds", 1), "options": {"webhook_url": url}})
    with caplog.at_level(logging.WARNING, logger="sceneforge.service"):
        state = await svc.wait("creds")
        await svc.service.webhooks.drain()
    assert len(receiver.received) == 1 and receiver.received[0][0]["Authorization"].startswith("Basic ")
    assert "s3cret-pass" not in json.dumps(state) and "***@" in state["options"]["webhook_url"]
    assert "not delivered" in caplog.text and "s3cret-pass" not in caplog.text
    events = await svc.stream("creds", after=0)
    assert "s3cret-pass" not in json.dumps(events)
    # The wrong scheme is still refused, whatever its case.
    body = await svc.submit({**topic("ftp", 1), "options": {"webhook_url": "FTP://example.com/x"}}, expect=422)
    assert "http:// or https://" in body["detail"]


async def test_a_name_is_checked_again_at_send_after_dns(receiver: Receiver):
    """Allowed at submit, refused at send: the addresses the connection would use are what count."""
    strict = WebhookSender(targets=WebhookTargets(), sleep=lambda s: asyncio.sleep(0))
    try:
        via_name = receiver.url.replace("127.0.0.1", "localhost")
        assert await strict.send(via_name, {"slug": "x"}, msg_id="x.1") is False
        assert await strict.send(receiver.url, {"slug": "x"}, msg_id="x.2") is False  # an IP literal too
    finally:
        await strict.aclose()
    assert receiver.received == []
    with pytest.raises(OSError, match="webhook target refused: localhost is on a loopback"):
        await GuardedResolver(WebhookTargets()).resolve("localhost", 80)
    kept = await GuardedResolver(WebhookTargets(["localhost"])).resolve("localhost", 80)
    assert kept and all(r["host"] in ("127.0.0.1", "::1") for r in kept)
    with pytest.raises(ConfigError, match="options.webhook_url: .* cannot be resolved"):
        await WebhookTargets().check("http://no-such-host.invalid/x")


async def test_concurrent_cancels_of_a_queued_job_make_one_transition(start, receiver: Receiver, comfy,
                                                                        tmp_path: Path):
    """Issue #17, item 7: four cancels at once: one 200, one ``cancelled`` event, one webhook."""
    comfy.fault("hang")
    svc = await start(with_comfy(tmp_path, comfy, serve_concurrency=1, serve_webhook_allow=LOCAL))
    await svc.submit(topic("blocker", 1))
    await svc.submit({**topic("waiting", 1), "options": {"webhook_url": receiver.url}})
    answers = await asyncio.gather(*(svc.call("POST", "/api/topics/waiting/cancel") for _ in range(4)))
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409], answers
    await svc.call("POST", "/api/topics/blocker/cancel")
    await svc.service.webhooks.drain()
    events = await svc.stream("waiting", after=0, until_idle=True)
    assert [e["data"]["status"] for e in events if e["kind"] == "status"] == ["queued", "cancelled"]
    assert [json.loads(b)["status"] for _, b in receiver.received] == ["cancelled"]


async def test_a_refused_target_is_tried_once_and_named_in_the_log(receiver: Receiver, caplog):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    strict = WebhookSender(targets=WebhookTargets(), sleep=sleep)
    try:
        assert await strict.send(receiver.url.replace("127.0.0.1", "localhost"), {"slug": "x"}, msg_id="x.1") is False
    finally:
        await strict.aclose()
    assert waits == [] and receiver.received == []  # refused is final: no retry
    assert "webhook target refused: localhost is on a loopback" in caplog.text
    assert issubclass(TargetRefused, OSError)
