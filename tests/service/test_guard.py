"""Issue #17, item 1: the service answers only its own names (421), takes changes only from its own pages
(403) and reads JSON only when a body says it is JSON (415), whatever the token setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import offline, topic

from sceneforge.service.guard import allowed_names, split_host


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_a_text_plain_or_form_body_is_415_and_nothing_is_written(start, tmp_path: Path):
    svc = await start(offline(tmp_path))
    import json

    body = json.dumps(topic("sneaky")).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {"Content-Type": ""}
        status, answer = await svc.call("POST", "/api/topics", data=body, headers=headers)
        assert status == 415 and "application/json" in answer["detail"], (ctype, answer)
    status, answer = await svc.call("POST", "/api/topics", data=body,
                                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 202, answer
    await svc.wait("sneaky")
    status, answer = await svc.call("PATCH", "/api/topics/sneaky/scenes/1", data=b'{"script": "x"}',
                                    headers={"Content-Type": "text/plain"})
    assert status == 415
    status, answer = await svc.call("POST", "/api/topics/sneaky/references", data=b"\x89PNG....",
                                    headers={"Content-Type": "text/plain"})
    assert status == 415 and "image/png" in answer["detail"]
    assert not (svc.out / "sneaky" / "references").exists()


async def test_a_change_from_another_origin_is_403_and_the_own_origin_passes(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_cors_origins=("https://studio.example",)))
    port = _port(svc.url)
    refused = {
        "another site": {"Origin": "https://evil.example"},
        "another port": {"Origin": f"http://127.0.0.1:{port + 1}"},
        "another scheme's default port": {"Origin": "http://127.0.0.1"},
        "a sandboxed page": {"Origin": "null"},
        "no Origin, cross-site": {"Sec-Fetch-Site": "cross-site"},
        "no Origin, same site other port": {"Sec-Fetch-Site": "same-site"},
    }
    for why, headers in refused.items():
        status, answer = await svc.call("POST", "/api/topics", body=topic("t"), headers=headers)
        assert status == 403, (why, answer)
    assert not (svc.out / "t").exists()
    allowed = {
        "its own origin": {"Origin": f"http://127.0.0.1:{port}"},
        "localhost is its own name": {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"},
        "an allowed origin": {"Origin": "https://studio.example"},
        "a tool (no Origin)": {},
        "the page itself": {"Sec-Fetch-Site": "same-origin"},
    }
    for i, (why, headers) in enumerate(allowed.items()):
        status, answer = await svc.call("POST", "/api/topics", body=topic(f"ok{i}"), headers=headers)
        assert status == 202, (why, answer)
    # Reads are the browser's rule (no CORS header for a stranger); the guard leaves them alone.
    status, _ = await svc.call("GET", "/api/topics", headers={"Origin": "https://evil.example"})
    assert status == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1:1", "localhost:1",
                                  "10.0.0.5:{port}", "[::1", "a:b:c"])
async def test_a_host_the_service_does_not_answer_to_is_421_everywhere(start, tmp_path: Path, host: str):
    svc = await start(offline(tmp_path))
    host = host.format(port=_port(svc.url))
    for path in ("/api/health", "/api/topics", "/", "/files/x/y.png", "/docs"):
        status, answer = await svc.call("GET", path, headers={"Host": host})
        assert status == 421 and "--allowed-host" in answer["detail"], (path, answer)


async def test_own_names_and_allowed_hosts_are_answered(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_allowed_hosts=("studio.lan",)))
    port = _port(svc.url)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}", f"[::1]:{port}", "localhost",
                 "studio.lan", "studio.lan:443"):
        status, _ = await svc.call("GET", "/api/health", headers={"Host": host})
        assert status == 200, host


def test_host_names_are_split_and_bound_names_derived():
    assert split_host("[::1]:8765") == ("::1", 8765)
    assert split_host("LocalHost.:80") == ("localhost", 80)
    assert split_host("example.com") == ("example.com", None)
    assert split_host("a:b") is None and split_host("[::1]x") is None and split_host("") is None
    assert [split_host(v) for v in ("x[::1]", "127.0.0.1/x", "u@127.0.0.1", "h:99999", "[no-v6]", "h:-1")] == [None] * 6
    names, any_ip = allowed_names("127.0.0.1", ["extra.example:99"])
    assert {"127.0.0.1", "localhost", "::1", "extra.example"} <= names and not any_ip
    names, any_ip = allowed_names("192.168.1.20")
    assert names == {"192.168.1.20"} and not any_ip
    names, any_ip = allowed_names("0.0.0.0")
    assert "localhost" in names and any_ip
