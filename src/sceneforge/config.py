"""Settings: defaults < ``sceneforge.toml`` < environment < CLI flags.

Environment names are ``SCENEFORGE_<FIELD>`` (e.g. ``SCENEFORGE_COMFY_URLS``), plus
the original system's names (``COMFYUI_URL``, ``MOTION_ENABLED``, ...) one step
below our own. Secrets (API keys, headers) come only from the environment or the
file and are never printed: they are ``SecretStr`` and excluded from fingerprints.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .retry import AUDIO_RETRY, IMAGE_RETRY, MOTION_RETRY, RetryPolicy

__all__ = ["Settings", "load_settings", "STAGES", "CONFIG_FILE"]

STAGES = ("audio", "image", "motion")
CONFIG_FILE = "sceneforge.toml"

# Names used by the original (seed) system, mapped to our fields. Ours win.
_LEGACY_ENV = {
    "COMFYUI_URL": "comfy_urls",
    "COMFYUI_WORKFLOW_PATH": "workflow",
    "COMFYUI_TIMEOUT": "comfy_timeout",
    "TTS_VOICE": "voice",
    "MOTION_ENABLED": "motion_enabled",
    "MOTION_FPS": "motion_fps",
    "OUTPUT_DIR": "out_dir",
    "OPENAI_API_KEY": "openai_api_key",
}

#: The URL schemes of pool members, with the kind of member each names: ComfyUI servers and serverless
#: endpoints (see docs/elastic.md; ``comfy/endpoints/urls.py`` reads it).
MEMBER_KINDS = {"http": "comfyui", "https": "comfyui", "runpod": "runpod", "runpod+http": "runpod",
                "runpod+https": "runpod", "comfyui-api+http": "comfyui-api", "comfyui-api+https": "comfyui-api"}
MEMBER_SCHEMES = tuple(f"{scheme}://" for scheme in MEMBER_KINDS)
#: What a comfy_urls table may say besides its url.
MEMBER_OPTIONS = frozenset({"concurrency", "price_per_second"})

#: The largest seed ComfyUI accepts (its seed inputs are unsigned 64-bit).
MAX_SEED = 2**64 - 1

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Settings(BaseModel):
    """Everything a run can be told. Every field has a sensible default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # where and what
    out_dir: Path = Path("output")
    stages: tuple[str, ...] = STAGES
    offline: bool = False
    force: bool = False
    only_scenes: frozenset[int] | None = None
    sequential: bool = False
    lock_wait: float = Field(0.0, ge=0)

    # narration
    tts: str = "edge"
    voice: str | None = None
    rate: float = Field(1.0, gt=0.1, le=4.0)
    tts_concurrency: int | None = Field(None, ge=1, le=64)
    tts_timeout: float = Field(60.0, gt=0)
    tts_workers: int | None = Field(None, ge=1, le=64)
    edge_url: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    openai_model: str = "tts-1"

    # images
    image_backend: str = "comfyui"
    comfy_urls: tuple[str, ...] = Field(("http://127.0.0.1:8188",), repr=False)  # may hold user:password
    comfy_headers: dict[str, SecretStr] = Field(default_factory=dict)
    comfy_timeout: float = Field(300.0, gt=0)
    comfy_poll_interval: float = Field(1.0, gt=0, le=60)  # fallback polling when the websocket is quiet
    comfy_queue_timeout: float = Field(900.0, gt=0)  # how long an endpoint job may wait for a worker (cold starts)
    #: Options of pool members given as tables in sceneforge.toml (``{url = "runpod://ID", concurrency = 8,
    #: price_per_second = 0.00031}``), by URL: ``concurrency`` (endpoints), ``price_per_second`` (any member).
    comfy_member_options: dict[str, dict[str, float]] = Field(default_factory=dict, repr=False)
    comfy_outage_grace: float = Field(120.0, ge=0)  # how long jobs wait for a restarting server when all are down
    # Against a hostile or broken server: the largest file kept from /view, and one download's overall deadline.
    comfy_max_download_mb: float = Field(1024.0, gt=0)
    comfy_download_timeout: float = Field(600.0, gt=0)
    workflow: str = "sdxl"
    prompt_node: str | None = None
    reference_node: str | None = None  # the LoadImage node (title or id) of a reference image; default "reference"
    reference_max_mb: float = Field(20.0, gt=0)  # the largest reference image accepted
    prompt_input: str = "text"
    negative: str | None = None
    seed: int | None = Field(None, ge=0)  # <= MAX_SEED, checked in _seed_limit
    width: int | None = Field(None, ge=64, le=16384)
    height: int | None = Field(None, ge=64, le=16384)
    image_concurrency: int = Field(2, ge=1, le=64)

    # motion
    motion_enabled: bool = False
    motion_backend: str = "wan"
    motion_workflow: str = "wan22-14b-i2v"
    motion_prompt_node: str | None = None
    motion_image_node: str | None = None
    motion_length: int | None = Field(None, ge=1, le=1025)
    motion_fps: float | None = Field(None, gt=0, le=120)
    motion_seed: int | None = Field(None, ge=0)  # <= MAX_SEED
    motion_width: int | None = Field(None, ge=16, le=8192)
    motion_height: int | None = Field(None, ge=16, le=8192)
    motion_timeout: float = Field(1800.0, gt=0)  # seconds per Wan job (a 14B clip takes minutes)
    kenburns_zoom: float = Field(1.15, ge=1.0, le=3.0)

    # retry schedules (the original system's)
    audio_retry: RetryPolicy = AUDIO_RETRY
    image_retry: RetryPolicy = IMAGE_RETRY
    motion_retry: RetryPolicy = MOTION_RETRY

    # the service (``sceneforge serve``)
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(8765, ge=0, le=65535)
    serve_concurrency: int = Field(2, ge=1, le=64)  # topics running at once (one job per topic)
    serve_max_queued: int = Field(100, ge=1, le=100_000)  # jobs waiting; more are refused (429)
    serve_max_body: int = Field(5 * 1024 * 1024, ge=1024)  # bytes of one request body (413 above)
    serve_max_scenes: int = Field(5000, ge=1, le=1_000_000)  # scenes of one topic submitted to the service (422 above)
    serve_cors_origins: tuple[str, ...] = ()  # none: no CORS headers at all
    serve_allowed_hosts: tuple[str, ...] = ()  # Host names answered beyond the bound address's own (421 otherwise)
    serve_webhook_allow: tuple[str, ...] = ()  # hosts or CIDRs a webhook may reach though private (SSRF guard)
    serve_token: SecretStr | None = None  # SCENEFORGE_SERVE_TOKEN: required off loopback; never printed
    webhook_secret: SecretStr | None = None  # SCENEFORGE_WEBHOOK_SECRET: signs webhook bodies (HMAC-SHA256)

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            v = [s.strip() for s in v.split(",") if s.strip()]
        v = tuple(v)
        bad = [s for s in v if s not in STAGES]
        if bad:
            raise ValueError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
        if not v:
            raise ValueError("at least one stage is needed")
        return tuple(s for s in STAGES if s in v)  # the order is always audio, image, motion

    @field_validator("serve_cors_origins", "serve_allowed_hosts", "serve_webhook_allow", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            v = [o.strip() for o in v.split(",") if o.strip()]
        return tuple(v)

    @field_validator("seed", "motion_seed")
    @classmethod
    def _seed_limit(cls, v: int | None) -> int | None:
        # Checked here, before any work: a server would reject it only after scenes.json was written.
        if v is not None and v > MAX_SEED:
            raise ValueError(f"must be at most 2**64 - 1 = {MAX_SEED}, the largest seed ComfyUI accepts")
        return v

    @model_validator(mode="before")
    @classmethod
    def _member_tables(cls, data: Any) -> Any:
        """``comfy_urls`` entries given as tables: the URL stays in ``comfy_urls``, the options move aside."""
        if not isinstance(data, dict) or not isinstance(data.get("comfy_urls"), (list, tuple)):
            return data
        urls, options = [], dict(data.get("comfy_member_options") or {})
        for entry in data["comfy_urls"]:
            if isinstance(entry, dict):
                entry = dict(entry)
                url = str(entry.pop("url", "")).rstrip("/")
                unknown = sorted(set(entry) - MEMBER_OPTIONS)
                if not url or unknown:
                    raise ValueError(f"a comfy_urls table needs url and may hold {', '.join(sorted(MEMBER_OPTIONS))}"
                                     + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
                options[url] = entry
                entry = url
            urls.append(entry)
        return {**data, "comfy_urls": urls, "comfy_member_options": options}

    @field_validator("comfy_urls", mode="before")
    @classmethod
    def _urls(cls, v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            v = [u.strip() for u in v.replace(" ", ",").split(",") if u.strip()]
        v = tuple(str(u).rstrip("/") for u in v)
        for u in v:
            if not u.startswith(MEMBER_SCHEMES):
                raise ValueError(f"ComfyUI URL must start with http:// or https:// (or name an endpoint: "
                                 f"runpod://ID, runpod+https://, comfyui-api+http://): {_redact_url(u)}")
        if not v:
            raise ValueError("at least one ComfyUI URL is needed")
        return v

    @field_validator("comfy_member_options")
    @classmethod
    def _member_options(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for url, opts in v.items():
            conc, price = opts.get("concurrency"), opts.get("price_per_second")
            if conc is not None and (conc != int(conc) or conc < 1):
                raise ValueError(f"{_redact_url(url)}: concurrency must be a whole number of at least 1")
            if price is not None and price < 0:
                raise ValueError(f"{_redact_url(url)}: price_per_second must not be negative")
        return v

    # --- effective choices -------------------------------------------------
    @property
    def tts_engine(self) -> str:
        """The narration backend that will run (``--offline`` picks espeak)."""
        return "espeak" if self.offline else self.tts

    @property
    def image_engine(self) -> str:
        return "storyboard" if self.offline else self.image_backend

    @property
    def motion_engine(self) -> str:
        return "kenburns" if self.offline else self.motion_backend

    @property
    def run_motion(self) -> bool:
        """Motion runs only when enabled *and* selected in ``stages``."""
        return self.motion_enabled and "motion" in self.stages

    def wants(self, stage: str) -> bool:
        if stage == "motion":
            return self.run_motion
        return stage in self.stages

    def public_dict(self) -> dict[str, Any]:
        """Settings with secrets masked, for display."""
        d = self.model_dump(mode="json")
        if self.openai_api_key is not None:
            d["openai_api_key"] = "***"
        d["comfy_headers"] = {k: "***" for k in self.comfy_headers}
        for name in ("serve_token", "webhook_secret"):
            if getattr(self, name) is not None:
                d[name] = "***"
        d["comfy_urls"] = [_redact_url(u) for u in self.comfy_urls]
        d["comfy_member_options"] = {_redact_url(u): o for u, o in self.comfy_member_options.items()}
        return d


def _redact_url(url: str) -> str:
    """Hide ``user:password@`` and query values (tokens) in a URL."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    host, sep, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rsplit("@", 1)[1]  # rsplit: a password may itself contain '@'
    out = f"{scheme}://{host}{sep}{path}"
    if "?" in out:
        base, query = out.split("?", 1)
        parts = [f"{kv.split('=', 1)[0]}=***" if "=" in kv else kv for kv in query.split("&")]
        out = base + "?" + "&".join(parts)
    return out


def redact_url(url: str) -> str:
    """Public helper: a URL safe to print (credentials removed)."""
    return _redact_url(url)


def _coerce_env(field: str, raw: str) -> Any:
    ann = Settings.model_fields[field].annotation
    text = raw.strip()
    if ann in (bool,) or field in ("offline", "force", "sequential", "motion_enabled"):
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{field}: expected true/false, got {raw!r}")
    if field == "comfy_headers":
        # "Name: value; Other: value"
        out: dict[str, str] = {}
        for part in text.split(";"):
            if ":" in part:
                k, v = part.split(":", 1)
                out[k.strip()] = v.strip()
        return out
    if field == "only_scenes":
        return frozenset(int(x) for x in text.split(",") if x.strip())
    if text == "" and field not in ("negative",):
        return None
    return text


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    # allow an optional [sceneforge] table, and nested tables flattened with _
    if "sceneforge" in data and isinstance(data["sceneforge"], dict):
        data = data["sceneforge"]
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and k not in ("comfy_headers",) and not k.endswith("_retry"):
            for k2, v2 in v.items():
                flat[f"{k}_{k2}"] = v2
        else:
            flat[k] = v
    if "comfy_url" in flat:
        flat["comfy_urls"] = flat.pop("comfy_url")
    unknown = sorted(set(flat) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return flat


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from the layers, lowest first.

    ``config_file`` defaults to ``./sceneforge.toml`` when it exists (or
    ``$SCENEFORGE_CONFIG``). ``overrides`` are CLI flags; ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}

    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    elif env.get("SCENEFORGE_CONFIG"):
        path = Path(env["SCENEFORGE_CONFIG"])
        if not path.is_file():
            raise ConfigError(f"SCENEFORGE_CONFIG points to {path}, which does not exist")
    else:
        path = Path(CONFIG_FILE) if Path(CONFIG_FILE).is_file() else None
    if path is not None:
        merged.update(_read_toml(path))

    for legacy, field in _LEGACY_ENV.items():
        if legacy in env:
            merged[field] = _coerce_env(field, env[legacy])
    for field in Settings.model_fields:
        key = f"SCENEFORGE_{field.upper()}"
        if key in env:
            merged[field] = _coerce_env(field, env[key])
    if "SCENEFORGE_COMFY_URL" in env:
        merged["comfy_urls"] = _coerce_env("comfy_urls", env["SCENEFORGE_COMFY_URL"])

    for k, v in (overrides or {}).items():
        if v is not None:
            merged[k] = v
    try:
        return Settings(**merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"setting {loc}: {msg}")
        raise ConfigError("\n".join(lines)) from None
