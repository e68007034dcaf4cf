"""Settings layers: defaults < sceneforge.toml < environment < CLI flags; secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sceneforge.config import Settings, load_settings
from sceneforge.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sceneforge.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults():
    s = load_settings(env={})
    assert s.out_dir == Path("output") and s.tts == "edge" and s.comfy_urls == ("http://127.0.0.1:8188",)
    assert s.tts_engine == "edge" and not s.motion_enabled
    assert s.audio_retry.initial_interval == 1.0 and s.image_retry.initial_interval == 3.0


def test_layers(tmp_path: Path):
    cfg = write(tmp_path, 'voice = "ko-KR-SunHiNeural"\nworkflow = "sd15"\n[comfy]\nurls = ["http://a:1", "http://b:2"]\n')
    s = load_settings(config_file=cfg, env={})
    assert s.voice == "ko-KR-SunHiNeural" and s.workflow == "sd15" and s.comfy_urls == ("http://a:1", "http://b:2")
    s = load_settings(config_file=cfg, env={"SCENEFORGE_VOICE": "env-voice", "TTS_VOICE": "legacy"})
    assert s.voice == "env-voice"
    s = load_settings(config_file=cfg, env={"TTS_VOICE": "legacy"})
    assert s.voice == "legacy"
    s = load_settings({"voice": "flag", "workflow": None}, config_file=cfg, env={"SCENEFORGE_VOICE": "env"})
    assert s.voice == "flag" and s.workflow == "sd15"


def test_original_system_env_names():
    s = load_settings(env={"MOTION_ENABLED": "true", "COMFYUI_URL": "http://gpu:8188/", "COMFYUI_TIMEOUT": "42",
                           "MOTION_FPS": "24", "OUTPUT_DIR": "/tmp/x"})
    assert s.motion_enabled and s.comfy_urls == ("http://gpu:8188",) and s.comfy_timeout == 42
    assert s.motion_fps == 24 and s.out_dir == Path("/tmp/x")
    assert load_settings(env={"MOTION_ENABLED": "0"}).motion_enabled is False


def test_offline_selects_offline_backends():
    s = load_settings({"offline": True}, env={})
    assert (s.tts_engine, s.image_engine, s.motion_engine) == ("espeak", "storyboard", "kenburns")


def test_bad_values_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown stage"):
        load_settings({"stages": "audio,video"}, env={})
    with pytest.raises(ConfigError, match="expected true/false"):
        load_settings(env={"MOTION_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config_file=write(tmp_path, "colour = 1\n"), env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=write(tmp_path, "= = =\n"), env={})
    with pytest.raises(ConfigError, match="http"):
        load_settings({"comfy_urls": ("ftp://x",)}, env={})


def test_secrets_never_echoed(tmp_path: Path):
    secret = "sk-SECRET-123456"
    s = load_settings(
        env={"OPENAI_API_KEY": secret, "SCENEFORGE_COMFY_HEADERS": f"Authorization: Bearer {secret}",
             "SCENEFORGE_COMFY_URLS": f"http://user:{secret}@gpu:8188"}
    )
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == secret
    assert s.comfy_headers["Authorization"].get_secret_value() == f"Bearer {secret}"
    for text in (repr(s), str(s), str(s.public_dict())):
        assert secret not in text
    with pytest.raises(ConfigError) as ei:
        load_settings({"comfy_urls": (f"ftp://u:{secret}@x",)}, env={})
    assert str(ei.value) == ("setting comfy_urls: ComfyUI URL must start with http:// or https:// (or name an "
                             "endpoint: runpod://ID, runpod+https://, comfyui-api+http://): ftp://***@x")


def test_redact_url_hides_passwords_with_at_signs_and_query_tokens():
    from sceneforge.config import redact_url

    assert redact_url("http://user:p@ss@gpu:8188/x") == "http://***@gpu:8188/x"
    assert redact_url("http://gpu:8188/?token=SECRET&a=1") == "http://gpu:8188/?token=***&a=***"
    assert redact_url("https://gpu/comfy") == "https://gpu/comfy"


def test_comfy_url_with_a_query_is_refused_without_echoing_it():
    from sceneforge.comfy.client import ComfyClient

    with pytest.raises(ConfigError) as ei:
        ComfyClient("http://gpu:8188/?token=SECRET")
    assert "SECRET" not in str(ei.value) and "query string" in str(ei.value)


def test_download_limits_reach_every_client():
    from sceneforge.comfy.pool.servers import clients_from_settings

    s = Settings(comfy_urls=("http://a:1", "http://b:2"), comfy_max_download_mb=2, comfy_download_timeout=9)
    clients = clients_from_settings(s)
    assert [(c.max_download_bytes, c.download_timeout) for c in clients] == [(2 * 1024 * 1024, 9.0)] * 2
    with pytest.raises(ConfigError, match="comfy_download_timeout"):
        load_settings({"comfy_download_timeout": 0})
