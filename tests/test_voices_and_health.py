"""The library's voice lists (:func:`sceneforge.voices.list_voices`) and structured doctor report
(:func:`sceneforge.doctor.doctor_report`): espeak offline, edge against the fake edge service on 127.0.0.1,
ComfyUI against the fake server, and the reasons given when something is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from fakes.comfy_server import FakeComfyServer
from fakes.tts_servers import FakeEdgeServer
from sceneforge.config import Settings
from sceneforge.doctor import doctor_report
from sceneforge.errors import ConfigError, ServerUnavailableError
from sceneforge.voices import OPENAI_VOICES, list_voices


async def test_espeak_lists_its_languages_offline() -> None:
    voices = await list_voices("espeak")
    names = {v.name for v in voices}
    assert {"ko", "en", "en-us", "ja"} <= names and len(voices) > 50
    korean = await list_voices("espeak", "ko-KR")
    assert [(v.name, v.description) for v in korean] == [("ko", "Korean")]
    assert {v.name for v in await list_voices("espeak", "EN")} >= {"en", "en-us", "en-gb-scotland"}


async def test_edge_lists_the_voices_of_its_endpoint(tmp_path: Path) -> None:
    async with FakeEdgeServer() as srv:
        settings = Settings(out_dir=tmp_path, edge_url=srv.url)
        voices = await list_voices("edge", "ko", settings=settings)
        assert [(v.name, v.language, v.gender) for v in voices] == [
            ("ko-KR-InJoonNeural", "ko-KR", "Male"), ("ko-KR-SunHiNeural", "ko-KR", "Female"),
            ("ko-KR-HyunsuMultilingualNeural", "ko-KR", "Male")]
        assert len(await list_voices("edge", settings=settings)) == len(FakeEdgeServer.VOICES)
        assert srv.requests[0]["path"].endswith("/voices/list")


async def test_edge_says_why_it_has_no_list(tmp_path: Path, dead_url: str) -> None:
    ws = dead_url.replace("http://", "ws://") + "/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=x"
    with pytest.raises(ServerUnavailableError, match=r"edge-tts: cannot read http://127\.0\.0\.1:\d+/.*voices/list"):
        await list_voices("edge", settings=Settings(out_dir=tmp_path, edge_url=ws))


async def test_other_engines() -> None:
    assert [v.name for v in await list_voices("openai", "ko")] == list(OPENAI_VOICES)
    with pytest.raises(ConfigError, match="cannot list the voices of 'piper'; choose from espeak, edge, openai"):
        await list_voices("piper")


async def test_an_offline_report_checks_the_narration_only(tmp_path: Path) -> None:
    report = await doctor_report(Settings(out_dir=tmp_path, offline=True))
    assert report.healthy and report.problems == 0
    assert (report.image_engine, report.narration_engine, report.servers) == ("storyboard", "espeak", [])
    assert report.narration[0].ok and "libespeak-ng loads" in report.narration[0].detail


async def test_a_report_names_a_healthy_server_and_a_dead_one(tmp_path: Path, dead_url: str) -> None:
    async with FakeComfyServer() as srv, FakeEdgeServer() as edge:
        srv.models["checkpoints"] = ["sd_xl_base_1.0.safetensors"]
        settings = Settings(out_dir=tmp_path, comfy_urls=(srv.url, dead_url), workflow="sdxl", edge_url=edge.url)
        report = await doctor_report(settings)
    good, dead = report.servers
    assert good.healthy and good.reason is None
    assert [c.name for c in good.checks] == ["reachable", "queue", "image workflow sdxl"]
    assert "ComfyUI 0.33.0" in good.checks[0].detail
    assert not dead.healthy and dead.server == dead_url and dead.reason
    assert report.narration[0].ok and "5 voices" in report.narration[0].detail
    assert not report.healthy and report.problems == 1


async def test_a_report_lists_missing_models_and_hides_passwords(tmp_path: Path) -> None:
    async with FakeComfyServer() as srv:
        srv.models["checkpoints"] = []
        url = srv.url.replace("http://", "http://user:hunter2pass@")
        srv.require_basic_auth = ("user", "hunter2pass")
        settings = Settings(out_dir=tmp_path, comfy_urls=(url,), workflow="sdxl", tts="openai",
                            openai_api_key=SecretStr("sk-secret-key"))
        report = await doctor_report(settings)
    text = report.model_dump_json()
    assert "hunter2pass" not in text and "sk-secret-key" not in text
    (server,) = report.servers
    workflow = server.checks[-1]
    assert not workflow.ok and any("sd_xl_base_1.0.safetensors" in p and "models/checkpoints/" in p
                                   for p in workflow.problems)
    assert report.problems == len(workflow.problems)


def test_doctor_json_prints_the_report(tmp_path: Path, dead_url: str) -> None:
    """``sceneforge doctor --json``: the structured report on stdout, exit 1 when something is unhealthy."""
    import json

    from typer.testing import CliRunner

    from sceneforge.cli import app

    with FakeComfyServer() as srv:
        srv.models["checkpoints"] = ["sd_xl_base_1.0.safetensors"]
        runner = CliRunner()
        good = runner.invoke(app, ["doctor", "--json", "--comfy-url", srv.url, "--workflow", "sdxl"],
                             env={"SCENEFORGE_TTS": "espeak"}, catch_exceptions=False)
        bad = runner.invoke(app, ["doctor", "--json", "--comfy-url", dead_url], env={"SCENEFORGE_TTS": "espeak"},
                            catch_exceptions=False)
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert report["healthy"] and report["servers"][0]["server"] == srv.url
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["servers"][0]["healthy"] is False
