"""``sceneforge doctor``: check that a run would find what it needs.

For every serverless endpoint it reports its health and what cannot be checked there
(:mod:`~sceneforge.cli.doctor_endpoints`). For every ComfyUI server in ``settings.comfy_urls`` it reports whether the server answers
(``/system_stats``: ComfyUI, Python and PyTorch versions, devices with their VRAM), how busy it is
(``/queue``), and whether the image workflow (and, with ``check_motion``, the motion workflow) would be
accepted there: node types it lacks, missing required inputs, out-of-range values
(:func:`~sceneforge.comfy.graphs.validate.validate_graph`) and model files it does not have
(:func:`~sceneforge.comfy.graphs.models.missing_models`), each named with the models folder it belongs in.
It also checks, briefly, that the narration engine can start (espeak: the library loads).

Every line is marked ✓ or ✗ and the report ends with ``all good`` or ``N problems``. Servers are only
ever named by their redacted URL (``ComfyClient.server``), and every message printed is scrubbed of the
configured passwords and header values as a second line of defence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yarl
from rich.console import Console
from rich.markup import escape

from ..comfy.client import ComfyClient
from ..comfy.graphs.models import missing_models
from ..comfy.graphs.validate import MODEL_EXTENSIONS, validate_graph
from ..comfy.graphs.workflow import Workflow
from ..comfy.pool.servers import clients_from_settings
from ..config import Settings, redact_url
from .doctor_endpoints import endpoint_secrets, report_endpoints

__all__ = ["run_doctor", "model_folders", "LOADER_FOLDERS"]

#: Loader class -> the ComfyUI ``models/`` folder its file input reads from.
LOADER_FOLDERS: dict[str, str] = {
    "CheckpointLoaderSimple": "checkpoints",
    "CheckpointLoader": "checkpoints",
    "ImageOnlyCheckpointLoader": "checkpoints",
    "UNETLoader": "diffusion_models",
    "UnetLoaderGGUF": "diffusion_models",
    "CLIPLoader": "text_encoders",
    "DualCLIPLoader": "text_encoders",
    "TripleCLIPLoader": "text_encoders",
    "QuadrupleCLIPLoader": "text_encoders",
    "CLIPLoaderGGUF": "text_encoders",
    "VAELoader": "vae",
    "LoraLoader": "loras",
    "LoraLoaderModelOnly": "loras",
    "CLIPVisionLoader": "clip_vision",
    "UpscaleModelLoader": "upscale_models",
    "ControlNetLoader": "controlnet",
    "DiffControlNetLoader": "controlnet",
    "StyleModelLoader": "style_models",
    "GLIGENLoader": "gligen",
    "HypernetworkLoader": "hypernetworks",
    "PhotoMakerLoader": "photomaker",
}
#: Input name -> folder, for loaders not listed above (custom nodes name their inputs alike).
_INPUT_FOLDERS: dict[str, str] = {
    "ckpt_name": "checkpoints",
    "unet_name": "diffusion_models",
    "vae_name": "vae",
    "lora_name": "loras",
    "control_net_name": "controlnet",
    "upscale_model_name": "upscale_models",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "photomaker_model_name": "photomaker",
}

#: Per-request limit while doctoring: a health check should not hang for the run's long timeouts.
_HTTP_TIMEOUT = 30.0
_GIB = 1024**3


def model_folders(graph: Mapping[str, Any]) -> dict[str, str]:
    """Model file name -> the ``models/`` folder it belongs in, judged from the node that loads it
    (its loader class, else the input's name). Files whose folder cannot be told are left out."""
    out: dict[str, str] = {}
    for node in graph.values():
        if not isinstance(node, Mapping) or not isinstance(node.get("inputs"), Mapping):
            continue
        class_type = node.get("class_type")
        by_class = LOADER_FOLDERS.get(class_type) if isinstance(class_type, str) else None
        for name, value in node["inputs"].items():
            if not isinstance(value, str) or value in out:
                continue
            by_name = _INPUT_FOLDERS.get(name) or ("text_encoders" if name.startswith("clip_name") else None)
            if by_name is None and not value.lower().endswith(MODEL_EXTENSIONS):
                continue  # a plain option ("default", "wan"), not a file
            folder = by_class or by_name
            if folder is not None:
                out[value] = folder
    return out


# --------------------------------------------------------------------------- report
class _Report:
    """Prints ✓/✗ lines, counts problems, and scrubs secrets from everything it prints."""

    def __init__(self, console: Console, secrets: list[str]) -> None:
        self.console = console
        self.problems = 0
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _line(self, text: str) -> str:
        return escape(self.scrub(text))

    def heading(self, text: str) -> None:
        self.console.print(f"[bold]{self._line(text)}[/]")

    def ok(self, text: str, indent: int = 2) -> None:
        self.console.print(" " * indent + f"[green]✓[/] {self._line(text)}")

    def bad(self, text: str, details: Sequence[str] = (), indent: int = 2, count: int = 1) -> None:
        self.problems += count
        self.console.print(" " * indent + f"[red]✗[/] {self._line(text)}")
        for d in details:
            self.console.print(" " * (indent + 4) + f"- {self._line(d)}")

    def note(self, text: str, indent: int = 2) -> None:
        self.console.print(" " * indent + f"[dim]·[/] {self._line(text)}")


def _secrets_of(settings: Settings) -> list[str]:
    """Values that must never be printed: URL passwords (and the raw URLs) and header values."""
    out: list[str] = []
    for url in settings.comfy_urls:
        if redact_url(url) != url:
            out.append(url)
        try:
            parsed = yarl.URL(url)
        except (TypeError, ValueError):
            continue
        out += [v for v in (parsed.raw_password, parsed.password) if v and len(v) >= 3]
    for value in settings.comfy_headers.values():
        secret = value.get_secret_value()
        if len(secret) >= 3:
            out.append(secret)
            if " " in secret:  # "Bearer <token>": the token alone too
                out.append(secret.split(" ", 1)[1])
    if settings.openai_api_key is not None and len(settings.openai_api_key.get_secret_value()) >= 3:
        out.append(settings.openai_api_key.get_secret_value())
    return out


def _cause(exc: BaseException) -> str:
    """The message of a failure, one line (sceneforge's errors already name the redacted server)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


# --------------------------------------------------------------------------- workflows
@dataclass
class _WorkflowCheck:
    kind: str  # "image" or "motion"
    name: str  # as configured
    workflow: Workflow | None = None
    load_error: str | None = None
    inject_error: str | None = None
    folders: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind} workflow {self.name}"


def _load_workflow(settings: Settings, kind: str) -> _WorkflowCheck:
    name = settings.workflow if kind == "image" else settings.motion_workflow
    check = _WorkflowCheck(kind, name)
    try:
        wf = Workflow.load(name, kind=kind)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        check.load_error = _cause(exc)
        return check
    check.workflow = wf
    check.folders = model_folders(wf.graph)
    try:
        if kind == "image":
            wf.inspect(kind="image", prompt_node=settings.prompt_node, prompt_input=settings.prompt_input)
        else:
            wf.inspect(
                kind="motion",
                prompt_node=settings.motion_prompt_node,
                image_node=settings.motion_image_node,
                prompt_input=settings.prompt_input,
            )
    except Exception as exc:  # noqa: BLE001
        check.inject_error = _cause(exc)
    return check


# --------------------------------------------------------------------------- servers
@dataclass
class _ServerFacts:
    server: str
    stats: dict[str, Any] | None = None
    error: str | None = None
    queue: tuple[int, int] | None = None
    queue_error: str | None = None
    object_info: dict[str, Any] | None = None
    object_info_error: str | None = None


async def _probe(client: ComfyClient, want_object_info: bool) -> _ServerFacts:
    facts = _ServerFacts(client.server)
    try:
        facts.stats = await client.system_stats()
    except Exception as exc:  # noqa: BLE001 - a dead server is a finding, not a crash
        facts.error = _cause(exc)
        return facts

    async def queue() -> None:
        try:
            q = await client.queue()
            facts.queue = (len(q.get("queue_running") or []), len(q.get("queue_pending") or []))
        except Exception as exc:  # noqa: BLE001
            facts.queue_error = _cause(exc)

    async def object_info() -> None:
        try:
            facts.object_info = await client.object_info()
        except Exception as exc:  # noqa: BLE001
            facts.object_info_error = _cause(exc)

    await asyncio.gather(queue(), *([object_info()] if want_object_info else []))
    return facts


def _gib(value: Any) -> str:
    return f"{value / _GIB:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _report_server(report: _Report, facts: _ServerFacts, workflows: list[_WorkflowCheck]) -> None:
    report.heading(f"ComfyUI {facts.server}")
    stats = facts.stats
    if stats is None:
        report.bad(f"not usable: {facts.error}")
        return
    raw_system = stats.get("system")
    system: dict[str, Any] = raw_system if isinstance(raw_system, dict) else {}
    report.ok(
        f"reachable: ComfyUI {system.get('comfyui_version') or '?'}, "
        f"Python {str(system.get('python_version') or '?').split()[0]}, PyTorch {system.get('pytorch_version') or '?'}"
    )
    devices = [d for d in stats.get("devices") or [] if isinstance(d, dict)]
    if not devices:
        report.note("no devices reported")
    for dev in devices:
        name, kind = dev.get("name") or "?", dev.get("type") or "?"
        total = dev.get("vram_total")
        if kind == "cpu" and not total:
            report.ok(f"device {name} ({kind}), no VRAM")
        else:
            report.ok(f"device {name} ({kind}): VRAM {_gib(total)} GiB total, {_gib(dev.get('vram_free'))} GiB free")
    if facts.queue is not None:
        running, pending = facts.queue
        report.ok(f"queue: {running} running, {pending} pending")
    else:
        report.bad(f"queue: {facts.queue_error}")
    if not workflows:
        return
    if facts.object_info is None:
        report.bad(f"cannot check workflows: {facts.object_info_error}")
        return
    for check in workflows:
        _report_workflow(report, check, facts.object_info)


def _report_workflow(report: _Report, check: _WorkflowCheck, object_info: Mapping[str, Any]) -> None:
    wf = check.workflow
    if wf is None:
        return  # its load error is reported once, above the servers
    problems = validate_graph(wf.graph, object_info)
    if problems:
        report.bad(f"{check.label}: {len(problems)} problem(s) with the server's nodes", problems, count=len(problems))
    else:
        report.ok(f"{check.label}: {len(wf.graph)} nodes, all known and valid")
    missing = missing_models(wf.graph, object_info)
    if missing:
        lines = [
            f"{f}  (in models/{check.folders[f]}/)" if f in check.folders else f for f in missing
        ]
        report.bad(f"{check.label}: {len(missing)} model file(s) missing on this server", lines, count=len(missing))
    else:
        report.ok(f"{check.label}: model files present")


# --------------------------------------------------------------------------- narration
def _espeak_loads() -> str:
    """Load libespeak-ng (not initialized: that is done in the synthesis workers). Returns a description."""
    import ctypes
    from pathlib import Path

    import espeakng_loader

    lib_path = espeakng_loader.get_library_path()
    ctypes.CDLL(lib_path)
    data = Path(espeakng_loader.get_data_path())
    if not data.is_dir():
        raise FileNotFoundError(f"espeak-ng data folder {data} is missing")
    return f"libespeak-ng loads ({Path(lib_path).name})"


async def _check_narration(report: _Report, settings: Settings) -> None:
    if "audio" not in settings.stages:
        return
    engine = settings.tts_engine
    report.heading(f"Narration: {engine}")
    if engine == "espeak":
        try:
            report.ok(await asyncio.to_thread(_espeak_loads))
        except Exception as exc:  # noqa: BLE001
            report.bad(f"espeak-ng cannot be loaded: {_cause(exc)} (is the espeakng-loader package installed?)")
    elif engine == "openai" and settings.openai_api_key is None:
        report.bad("no OpenAI API key (set OPENAI_API_KEY or SCENEFORGE_OPENAI_API_KEY)")
    else:
        report.note("online engine; not checked")


# --------------------------------------------------------------------------- entry point
async def run_doctor(settings: Settings, console: Console, *, check_motion: bool = False) -> bool:
    """Check every ComfyUI server and the workflows against it; print the report on ``console``.

    Returns True when every server is reachable and every checked workflow is valid there with all
    its model files present (and the narration engine loads). Never raises for what it checks.
    """
    report = _Report(console, _secrets_of(settings) + endpoint_secrets())
    workflows = [_load_workflow(settings, "image")]
    if check_motion:
        workflows.append(_load_workflow(settings, "motion"))

    report.heading("Workflows")
    for check in workflows:
        if check.load_error is not None:
            report.bad(f"{check.label}: {check.load_error}")
            continue
        assert check.workflow is not None
        report.ok(f"{check.label}: loaded from {check.workflow.source} ({len(check.workflow.graph)} nodes)")
        if check.inject_error is not None:
            report.bad(f"{check.label}: {check.inject_error}")
    usable = [c for c in workflows if c.workflow is not None]

    clients = clients_from_settings(settings)
    try:
        for client in clients:
            client.http_timeout = min(client.http_timeout, _HTTP_TIMEOUT)
        # Probe all servers at once; report them in the configured order as each finishes.
        tasks = [asyncio.ensure_future(_probe(c, bool(usable))) for c in clients]
        try:
            for task in tasks:
                _report_server(report, await task, usable)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    await report_endpoints(report, settings, usable)
    await _check_narration(report, settings)

    if report.problems:
        console.print(f"[bold red]✗ {report.problems} problem{'s' if report.problems != 1 else ''}[/]")
    else:
        console.print("[bold green]✓ all good[/]")
    return report.problems == 0
