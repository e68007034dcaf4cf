"""What ``sceneforge doctor`` checks, as data: :func:`doctor_report`.

For every serverless endpoint: its health and what cannot be checked there
(:func:`~sceneforge.comfy.endpoints.health.endpoint_findings`). For every ComfyUI server in
``settings.comfy_urls`` (when images or motion run on ComfyUI):
whether it answers (``/system_stats``: versions, devices), how busy it is (``/queue``), and
whether the image workflow (and, with ``check_motion``, the motion workflow) would be accepted
there: node types it lacks, bad inputs (:func:`~sceneforge.comfy.graphs.validate.validate_graph`) and
model files it does not have (:func:`~sceneforge.comfy.graphs.models.missing_models`). Then the
narration engine: espeak's library loads; edge's voice list answers; OpenAI has a key.

Every failure is a finding with its reason, never an exception. Servers are named by their
redacted URL, and every text of the report is scrubbed of the configured passwords and
header values. The command line prints this report (:mod:`sceneforge.cli.doctor`), as text or as JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yarl
from pydantic import BaseModel, Field

from .comfy.client import ComfyClient
from .comfy.endpoints.health import NOT_CHECKED, endpoint_findings
from .comfy.graphs.models import missing_models
from .comfy.graphs.validate import MODEL_EXTENSIONS, validate_graph
from .comfy.graphs.workflow import Workflow
from .comfy.pool.servers import clients_from_settings, runpod_key
from .config import Settings, redact_url
from .errors import ServerUnavailableError

__all__ = ["doctor_report", "DoctorReport", "ServerHealth", "Check", "model_folders", "LOADER_FOLDERS",
           "NOT_CHECKED"]

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
HTTP_TIMEOUT = 30.0


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



def secrets_of(settings: Settings) -> list[str]:
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


def cause(exc: BaseException) -> str:
    """The message of a failure, one line (sceneforge's errors already name the redacted server)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()



@dataclass
class WorkflowCheck:
    kind: str  # "image" or "motion"
    name: str  # as configured
    workflow: Workflow | None = None
    load_error: str | None = None
    inject_error: str | None = None
    folders: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind} workflow {self.name}"


def load_workflow(settings: Settings, kind: str) -> WorkflowCheck:
    name = settings.workflow if kind == "image" else settings.motion_workflow
    check = WorkflowCheck(kind, name)
    try:
        wf = Workflow.load(name, kind=kind)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        check.load_error = cause(exc)
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
        check.inject_error = cause(exc)
    return check



@dataclass
class ServerFacts:
    server: str
    stats: dict[str, Any] | None = None
    error: str | None = None
    queue: tuple[int, int] | None = None
    queue_error: str | None = None
    object_info: dict[str, Any] | None = None
    object_info_error: str | None = None


async def probe_server(client: ComfyClient, want_object_info: bool) -> ServerFacts:
    facts = ServerFacts(client.server)
    try:
        facts.stats = await client.system_stats()
    except Exception as exc:  # noqa: BLE001 - a dead server is a finding, not a crash
        facts.error = cause(exc)
        return facts

    async def queue() -> None:
        try:
            q = await client.queue()
            facts.queue = (len(q.get("queue_running") or []), len(q.get("queue_pending") or []))
        except Exception as exc:  # noqa: BLE001
            facts.queue_error = cause(exc)

    async def object_info() -> None:
        try:
            facts.object_info = await client.object_info()
        except Exception as exc:  # noqa: BLE001
            facts.object_info_error = cause(exc)

    await asyncio.gather(queue(), *([object_info()] if want_object_info else []))
    return facts



def espeak_loads() -> str:
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




# --------------------------------------------------------------------------- the report
#: Motion engines that run on the ComfyUI servers.
_COMFY_MOTION = ("wan",)

class Check(BaseModel):
    """One finding: ``ok`` or not, what was found (``detail``), and each problem on its own line."""

    name: str
    ok: bool
    detail: str
    problems: list[str] = Field(default_factory=list)


class ServerHealth(BaseModel):
    """One ComfyUI server: reachable or not (``reason`` says why not), and its checks."""

    server: str
    healthy: bool
    reason: str | None = None
    checks: list[Check] = Field(default_factory=list)
    #: ``comfyui``, ``runpod`` or ``comfyui-api`` (``""``: the endpoints as a whole, e.g. no key).
    kind: str = "comfyui"


class DoctorReport(BaseModel):
    """Everything a run needs, healthy or not. ``problems`` counts the failed findings' problems."""

    healthy: bool
    problems: int
    image_engine: str
    motion_engine: str | None
    narration_engine: str
    workflows: list[Check] = Field(default_factory=list)
    servers: list[ServerHealth] = Field(default_factory=list)
    narration: list[Check] = Field(default_factory=list)


_GIB = 1024**3


def _gib(value: Any) -> str:
    return f"{value / _GIB:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _reachable(stats: dict[str, Any]) -> str:
    """Versions and devices (with their VRAM) of a server's ``/system_stats``, one line."""
    raw_system = stats.get("system")
    system: dict[str, Any] = raw_system if isinstance(raw_system, dict) else {}
    versions = (f"ComfyUI {system.get('comfyui_version') or '?'}, "
                f"Python {str(system.get('python_version') or '?').split()[0]}, "
                f"PyTorch {system.get('pytorch_version') or '?'}")
    devices = []
    for dev in (d for d in stats.get("devices") or [] if isinstance(d, dict)):
        name, kind, total = dev.get("name") or "?", dev.get("type") or "?", dev.get("vram_total")
        devices.append(f"device {name} ({kind}), no VRAM" if kind == "cpu" and not total else
                       f"device {name} ({kind}): VRAM {_gib(total)} GiB total, {_gib(dev.get('vram_free'))} GiB free")
    return "; ".join([versions, *(devices or ["no devices reported"])])


def _workflow_on_server(check: WorkflowCheck, object_info: dict[str, Any]) -> Check:
    assert check.workflow is not None
    graph = check.workflow.graph
    problems = validate_graph(graph, object_info)
    missing = [f"missing model file {f}" + (f"  (in models/{check.folders[f]}/)" if f in check.folders else "")
               for f in missing_models(graph, object_info)]
    detail = ", ".join(
        [f"{len(missing)} model file(s) missing on this server" if missing else "model files present"]
        + [f"{len(problems)} problem(s) with the server's nodes" if problems
           else f"{len(graph)} nodes, all known and valid"])
    return Check(name=check.label, ok=not (problems or missing), detail=detail, problems=[*problems, *missing])


def _server_checks(facts: ServerFacts, workflows: list[WorkflowCheck]) -> ServerHealth:
    if facts.stats is None:
        return ServerHealth(server=facts.server, healthy=False, reason=facts.error or "no answer")
    checks = [Check(name="reachable", ok=True, detail=_reachable(facts.stats))]
    if facts.queue is not None:
        checks.append(Check(name="queue", ok=True, detail=f"{facts.queue[0]} running, {facts.queue[1]} pending"))
    else:
        checks.append(Check(name="queue", ok=False, detail=facts.queue_error or "?", problems=[facts.queue_error or "?"]))
    usable = [w for w in workflows if w.workflow is not None]
    if usable and facts.object_info is None:
        why = f"cannot check workflows: {facts.object_info_error}"
        checks.append(Check(name="workflows", ok=False, detail=why, problems=[why]))
    elif facts.object_info is not None:
        checks += [_workflow_on_server(w, facts.object_info) for w in usable]
    bad = [c.detail for c in checks if not c.ok]
    return ServerHealth(server=facts.server, healthy=not bad, checks=checks, reason="; ".join(bad) or None)


async def _narration(settings: Settings) -> list[Check]:
    engine = settings.tts_engine
    if "audio" not in settings.stages:
        return []
    if engine == "espeak":
        try:
            return [Check(name="espeak", ok=True, detail=await asyncio.to_thread(espeak_loads))]
        except Exception as exc:  # noqa: BLE001 - a finding
            why = f"espeak-ng cannot be loaded: {cause(exc)} (is the espeakng-loader package installed?)"
            return [Check(name="espeak", ok=False, detail=why, problems=[why])]
    if engine == "edge":
        from .tts.edge import fetch_voice_list

        try:
            voices = await fetch_voice_list(settings.edge_url, min(10.0, settings.tts_timeout))
        except ServerUnavailableError as exc:
            return [Check(name="edge", ok=False, detail=str(exc), problems=[str(exc)])]
        return [Check(name="edge", ok=True, detail=f"the voice list answers ({len(voices)} voices)")]
    if engine == "openai" and settings.openai_api_key is None:
        why = "no OpenAI API key (set OPENAI_API_KEY or SCENEFORGE_OPENAI_API_KEY)"
        return [Check(name="openai", ok=False, detail=why, problems=[why])]
    return [Check(name=engine, ok=True, detail="online engine; not checked")]


async def _probe_all(settings: Settings, workflows: list[WorkflowCheck]) -> list[ServerHealth]:
    clients = clients_from_settings(settings)
    try:
        for client in clients:
            client.http_timeout = min(client.http_timeout, HTTP_TIMEOUT)
        usable = any(w.workflow is not None for w in workflows)
        facts = await asyncio.gather(*(probe_server(c, usable) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return [_server_checks(f, workflows) for f in facts]


def _scrubbed(report: DoctorReport, secrets: list[str]) -> DoctorReport:
    text = report.model_dump_json()
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return DoctorReport.model_validate_json(text)


async def _endpoints(settings: Settings, workflows: list[WorkflowCheck]) -> list[ServerHealth]:
    """The pool's serverless endpoints, as servers: their health, what cannot be checked there, and
    whether each workflow's outputs can come back (a RunPod worker returns only ``images``)."""
    graphs = {w.label: w.workflow.graph for w in workflows if w.workflow is not None}
    out = []
    for found in await endpoint_findings(settings, graphs):
        if found.error is not None:
            out.append(ServerHealth(server=found.server, kind=found.kind, healthy=False, reason=found.error))
            continue
        back = "its outputs come back" + (" from worker-comfyui" if found.kind == "runpod" else "")
        checks = [Check(name="reachable", ok=True, detail=found.health),
                  Check(name="not checked", ok=True, detail=NOT_CHECKED)]
        checks += [Check(name=label, ok=not lines, problems=lines, detail=back if not lines
                         else "its outputs cannot come back from this endpoint") for label, lines in found.outputs.items()]
        bad = [c.detail for c in checks if not c.ok]
        out.append(ServerHealth(server=found.server, kind=found.kind, healthy=not bad, checks=checks,
                                reason="; ".join(bad) or None))
    return out


async def doctor_report(settings: Settings, *, check_motion: bool = False) -> DoctorReport:
    """Check the servers and engines ``settings`` name (never raises for what it checks)."""
    comfy_kinds = [kind for kind, wanted in (
        ("image", settings.image_engine == "comfyui" and "image" in settings.stages),
        ("motion", settings.motion_engine in _COMFY_MOTION and check_motion)) if wanted]
    workflows = [load_workflow(settings, kind) for kind in comfy_kinds]
    checks = [Check(name=w.label, ok=w.load_error is None and w.inject_error is None,
                    detail=w.load_error or w.inject_error or (f"loaded from {w.workflow.source} ({len(w.workflow.graph)} "
                                                              "nodes)" if w.workflow else "?"),
                    problems=[p for p in (w.load_error, w.inject_error) if p]) for w in workflows]
    servers = [*await _probe_all(settings, workflows), *await _endpoints(settings, workflows)] if comfy_kinds else []
    narration = await _narration(settings)
    problems = sum(len(c.problems) for c in [*checks, *narration]) + sum(
        1 if not s.checks else sum(len(c.problems) for c in s.checks) for s in servers if not s.healthy)
    report = DoctorReport(healthy=problems == 0, problems=problems, image_engine=settings.image_engine,
                          motion_engine=settings.motion_engine if check_motion else None,
                          narration_engine=settings.tts_engine, workflows=checks, servers=servers,
                          narration=narration)
    key = runpod_key()
    return _scrubbed(report, [*secrets_of(settings), *([key] if len(key) >= 3 else [])])
