"""Planted secrets never leave the process: not on stdout/stderr, in events, scenes.json, cache records
or the job journal, whether the run succeeds or fails (with ``--debug`` tracebacks too), nor in ``doctor``.

Three secrets are planted where a user puts them, and the fakes *require* them, so each run really
carries them on the wire:

* ``OPENAI_API_KEY`` (the fake speech server records the bearer key it got; one run makes it answer
  401 and echo the key back, as careless servers do);
* ``SCENEFORGE_COMFY_HEADERS="Authorization: Bearer ..."`` (server A answers 401 without it);
* a password in the ComfyUI URL, ``http://user:...@127.0.0.1:PORT`` (server B requires that Basic auth),
  from ``SCENEFORGE_COMFY_URLS`` and from ``--comfy-url``.

Each run is a real ``python -m sceneforge.cli`` process; then every byte it wrote is searched for the
secrets, and for the Basic-auth token (base64 of ``user:password``) that would betray the password.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.comfy_server import FakeComfyServer
from fakes.tts_servers import FakeOpenAIServer

pytestmark = pytest.mark.timeout(120)

KEY = "sk-PLANTED-9f8e7d"
TOKEN = "tok-PLANTED-b3a2c1"
PASSWORD = "pw-PLANTED-6e5d4c"
USER = "render"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (KEY, TOKEN, PASSWORD, BASIC, "PLANTED")


class InThread:
    """Run an async fake server (``async with``) on its own loop in a thread, for subprocess tests."""

    def __init__(self, srv) -> None:
        self.srv = srv
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.srv.__aenter__(), self.loop).result(10)
        return self.srv

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.srv.__aexit__(None, None, None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{s.getsockname()[1]}"


def with_password(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@")


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAIServer, FakeComfyServer, FakeComfyServer]]:
    with InThread(FakeOpenAIServer()) as tts, FakeComfyServer() as a, FakeComfyServer() as b:
        for s in (a, b):
            s.accept_any_model = True
            s.models["checkpoints"].append("sd_xl_base_1.0.safetensors")  # so doctor finds the model
        a.require_headers = {"Authorization": f"Bearer {TOKEN}"}
        b.require_basic_auth = (USER, PASSWORD)
        yield tts, a, b


class Runs:
    """Every process run, with where its output went."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env, self.outputs = tmp, env, []

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "sceneforge.cli", *args], check=False, capture_output=True, stdin=subprocess.DEVNULL,
                           env={**self.env, **(env or {})}, cwd=self.tmp, timeout=90)
        self.outputs.append((" ".join(args[:1]), p.stdout + p.stderr))
        return p


def test_planted_secrets_appear_nowhere(tmp_path: Path, servers):
    tts, a, b = servers
    out = tmp_path / "out"
    events1, events2 = tmp_path / "ok.events", tmp_path / "failed.events"
    scenes = {"topic": "secrets", "scenes": [{"script": f"Line {n} of the narration.", "image_prompt": f"a harbour {n}"}
                                             for n in (1, 2)]}
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps(scenes))
    # Short retry waits for the failing run (the schedule itself is tested elsewhere).
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[image_retry]\ninitial_interval = 0.01\n[motion_retry]\ninitial_interval = 0.01\n"
                   "[audio_retry]\ninitial_interval = 0.01\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_")}
    env.update(OPENAI_API_KEY=KEY, SCENEFORGE_OPENAI_BASE_URL=tts.base_url, COLUMNS="200")
    run = Runs(tmp_path, env)
    bearer = {"SCENEFORGE_COMFY_HEADERS": f"Authorization: Bearer {TOKEN}"}
    common = ["--out", str(out), "--tts", "openai", "--workflow", "sdxl", "--width", "64", "--height", "64",
              "--motion", "--motion-length", "5", "--config", str(cfg)]

    # 1. A run that succeeds: the key to the speech server, the bearer header to ComfyUI server A.
    p = run("run", str(f), *common, "--comfy-url", a.url, "--events", str(events1), "--json", env=bearer)
    assert p.returncode == 0, p.stderr.decode()
    assert {r["headers"].get("Authorization") for r in tts.requests} == {f"Bearer {KEY}"}
    assert a.jobs and {r["headers"].get("Authorization") for r in a.requests} == {f"Bearer {TOKEN}"}

    # 2. A run that fails everywhere, with tracebacks: the password in both server URLs (B answers,
    #    the other is dead), 500 on every /prompt, and a speech server that rejects the key and echoes it.
    b.fault("prompt_500")
    tts.fail("401")
    f2 = tmp_path / "failing.json"
    f2.write_text(json.dumps({**scenes, "topic": "secrets failing"}))
    urls = {"SCENEFORGE_COMFY_URLS": f"{with_password(b.url)},{dead_url()}"}  # the password from the environment
    p = run("run", str(f2), *common, "--events", str(events2), "--debug", env=urls)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "HTTP 401" in err and "HTTP 500" in events2.read_text()  # it did fail the ways intended
    assert "Traceback" in err and "Value for 'trace' required" not in err  # --debug printed the error's traceback
    assert b.prompts and all(r["headers"].get("Authorization") == f"Basic {BASIC}" for r in b.requests)
    # What the failed run left: the journal of the jobs it submitted names the server, redacted.
    failed_root = out / "secrets-failing"
    snapshot = [(q.as_posix(), q.read_bytes()) for q in failed_root.rglob("*") if q.is_file()]
    journal = [data for where, data in snapshot if "/.sceneforge/jobs/" in where]
    assert journal and all(json.loads(d)["server"] == f"http://***@127.0.0.1:{b.port}" for d in journal)
    b.clear_faults()
    tts.fail(None)

    # 3. The same topic again, the password URLs now on the command line, the server healthy: it finishes.
    p = run("run", str(f2), *common, "--comfy-url", with_password(b.url), "--comfy-url", dead_url(),
            "--events", str(events2.with_suffix(".again")))
    assert p.returncode == 0, p.stderr.decode()

    # 4. doctor, with every kind of secret, one server healthy per credential, one dead, one wrong password.
    p = run("doctor", "--comfy-url", a.url, env={**bearer, "SCENEFORGE_TTS": "openai"})  # edge: no network here
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    p = run("doctor", "--comfy-url", with_password(b.url), "--comfy-url", dead_url(), env={"SCENEFORGE_TTS": "openai"})
    assert p.returncode == 1 and b"ComfyUI 0.33.0" in p.stdout + p.stderr
    p = run("doctor", "--comfy-url", b.url.replace("http://", f"http://{USER}:wrong-PLANTED-pw@"),
            env={"SCENEFORGE_TTS": "openai"})
    assert p.returncode == 1 and b"401" in p.stdout + p.stderr

    # What was written: state, cache records, the job journal of the failed run, events.
    files = [q for q in out.rglob("*") if q.is_file()]
    names = {q.relative_to(out).as_posix() for q in files}
    assert "secrets/scenes.json" in names and "secrets/.sceneforge/image/scene_1.json" in names
    assert "secrets-failing/.sceneforge/motion/scene_2.json" in names
    everything = [(q.as_posix(), q.read_bytes()) for q in [*files, events1, events2, events2.with_suffix(".again")]]
    everything += snapshot
    everything += [(f"output of {what}", text) for what, text in run.outputs]
    leaks = [(where, s) for where, data in everything for s in SECRETS if s.encode() in data]
    assert leaks == []
    # The redacted form is what is shown instead.
    assert any(b"http://***@127.0.0.1" in data for _, data in everything)


RUNPOD_KEY = "rpa_PLANTED-7c6b5a"


def test_the_runpod_key_appears_nowhere(tmp_path: Path):
    """``RUNPOD_API_KEY`` goes to the endpoint as ``Authorization: Bearer`` and nowhere else, in a run that
    succeeds, one the endpoint refuses (a wrong key, echoed nowhere), and one with ``--debug``."""
    from fakes.runpod import FakeRunPod

    scenes = {"topic": "rented", "scenes": [{"script": f"Line {n}.", "image_prompt": f"a harbour {n}"} for n in (1, 2)]}
    f = tmp_path / "scenes.json"
    f.write_text(json.dumps(scenes))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENEFORGE_") and k != "RUNPOD_API_KEY"}
    env.update(COLUMNS="200")
    run = Runs(tmp_path, env)
    out, events = tmp_path / "out", tmp_path / "run.events"
    with InThread(FakeRunPod(api_key=RUNPOD_KEY, workers=2)) as fake:
        common = ["--out", str(out), "--tts", "espeak", "--workflow", "sdxl", "--width", "64", "--height", "64",
                  "--comfy-url", fake.member_url, "--events", str(events), "--json"]
        p = run("run", str(f), *common, env={"RUNPOD_API_KEY": RUNPOD_KEY})
        assert p.returncode == 0, p.stderr.decode()
        assert len(fake.submitted) == 2
        assert {a for _, _, a in fake.requests} == {200}
        p = run("run", str(f), *common, "--force", "--debug", env={"SCENEFORGE_RUNPOD_API_KEY": "rpa_PLANTED-wrong"})
        assert p.returncode != 0 and b"401" in p.stdout + p.stderr
    files = [q for q in out.rglob("*") if q.is_file()] + [events]
    everything = [(q.as_posix(), q.read_bytes()) for q in files] + [(w, t) for w, t in run.outputs]
    assert any("scenes.json" in w for w, _ in everything)
    leaks = [(where, s) for where, data in everything for s in (RUNPOD_KEY, "PLANTED") if s.encode() in data]
    assert leaks == []
