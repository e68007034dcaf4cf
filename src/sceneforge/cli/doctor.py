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
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..comfy.graphs.models import missing_models
from ..comfy.graphs.validate import validate_graph
from ..comfy.pool.servers import clients_from_settings
from ..config import Settings
from ..doctor import (
    HTTP_TIMEOUT,
    LOADER_FOLDERS,
    ServerFacts,
    WorkflowCheck,
    cause,
    espeak_loads,
    load_workflow,
    model_folders,
    probe_server,
    secrets_of,
)
from .doctor_endpoints import endpoint_secrets, report_endpoints

__all__ = ["run_doctor", "model_folders", "LOADER_FOLDERS"]

# The checks themselves are the library's (sceneforge.doctor, which also gives them as data); this
# module prints them.
_ServerFacts = ServerFacts
_GIB = 1024**3


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


# --------------------------------------------------------------------------- workflows
# --------------------------------------------------------------------------- servers
def _gib(value: Any) -> str:
    return f"{value / _GIB:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _report_server(report: _Report, facts: ServerFacts, workflows: list[WorkflowCheck]) -> None:
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


def _report_workflow(report: _Report, check: WorkflowCheck, object_info: Mapping[str, Any]) -> None:
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
async def _check_narration(report: _Report, settings: Settings) -> None:
    if "audio" not in settings.stages:
        return
    engine = settings.tts_engine
    report.heading(f"Narration: {engine}")
    if engine == "espeak":
        try:
            report.ok(await asyncio.to_thread(espeak_loads))
        except Exception as exc:  # noqa: BLE001
            report.bad(f"espeak-ng cannot be loaded: {cause(exc)} (is the espeakng-loader package installed?)")
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
    report = _Report(console, secrets_of(settings) + endpoint_secrets())
    workflows = [load_workflow(settings, "image")]
    if check_motion:
        workflows.append(load_workflow(settings, "motion"))

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
            client.http_timeout = min(client.http_timeout, HTTP_TIMEOUT)
        # Probe all servers at once; report them in the configured order as each finishes.
        tasks = [asyncio.ensure_future(probe_server(c, bool(usable))) for c in clients]
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
