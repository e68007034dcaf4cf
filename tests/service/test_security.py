"""Token rules, the listening address, and the real command: it prints its URL, stops cleanly on SIGTERM,
refuses a public address without a token (exit 2), and never shows the token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from service_helpers import offline, topic
from typer.testing import CliRunner

from sceneforge.cli import app
from sceneforge.errors import ConfigError
from sceneforge.service.auth import check_bind, is_loopback

TOKEN = "tok-5ecret-ABCDEF0123456789"


def test_loopback_needs_no_token_and_every_other_address_does():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com", ""):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="SCENEFORGE_SERVE_TOKEN"):
            check_bind(host, None)
        check_bind(host, TOKEN)


async def test_with_a_token_every_api_and_file_request_needs_it(start, tmp_path: Path):
    svc = await start(offline(tmp_path, serve_token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    await svc.submit(topic("guarded", 1))
    state = await svc.wait("guarded")
    image = state["scenes"][0]["urls"]["image"]
    async with aiohttp.ClientSession() as anon:
        for path in ("/api/health", "/api/topics", "/api/topics/guarded", image, "/api/topics/guarded/events"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                            {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Basic {TOKEN}"}):
                async with anon.get(svc.url + path, headers=headers) as resp:
                    assert resp.status == 401, (path, headers)
                    assert resp.headers["WWW-Authenticate"] == "Bearer"
                    body = await resp.json()
                    assert body["detail"] in ("wrong token", "a token is needed: send 'Authorization: Bearer <token>'")
                    assert TOKEN not in json.dumps(body)
        async with anon.post(svc.url + "/api/topics", json=topic("sneaky", 1)) as resp:
            assert resp.status == 401
        for scheme in ("bearer", "BEARER"):  # the scheme name is case-insensitive (RFC 9110)
            async with anon.get(svc.url + "/api/topics", headers={"Authorization": f"{scheme} {TOKEN}"}) as resp:
                assert resp.status == 200, scheme
        for open_path in ("/docs", "/openapi.json", "/"):  # no data there: the page asks for the token
            async with anon.get(svc.url + open_path) as resp:
                assert resp.status == 200, open_path
    assert not (svc.out / "sneaky").exists()
    assert (await svc.call("GET", image))[0] == 200
    for path in svc.out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".srt"):
            assert TOKEN not in path.read_text(errors="replace"), path


def test_the_command_refuses_a_public_address_without_a_token(tmp_path: Path):
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without a token" in r.output and "SCENEFORGE_SERVE_TOKEN" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_the_real_command_prints_its_url_serves_and_stops_on_sigterm(tmp_path: Path):
    env = {**os.environ, "SCENEFORGE_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "sceneforge.cli", "serve", "--out", str(tmp_path / "out"),
                             "--port", "0", "--offline"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("sceneforge serving ") and "on http://127.0.0.1:" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        import urllib.request

        req = urllib.request.Request(url + "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert TOKEN not in line + out + err
    assert "Traceback" not in err
