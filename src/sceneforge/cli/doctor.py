"""``sceneforge doctor``'s text: a rendering of :func:`sceneforge.doctor.doctor_report`.

The checks, and the scrubbing of every configured password and header value from what they say, are
the library's (the ``--json`` output and the MCP ``doctor`` tool give the same report as data); this
module prints them: a section per workflow list, server or endpoint and narration engine, every line
marked ✓ or ✗ (· for what cannot be checked), the problems of a failed check under it, and a last line
``all good`` or ``N problems``.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..config import Settings
from ..doctor import Check, DoctorReport, ServerHealth, doctor_report

__all__ = ["run_doctor", "render_report"]

_HEADINGS = {"comfyui": "ComfyUI", "runpod": "RunPod endpoint", "comfyui-api": "comfyui-api", "": ""}


def _check(console: Console, check: Check, *, named: bool = True) -> None:
    text = escape(f"{check.name}: {check.detail}" if named else check.detail)
    if check.name == "not checked":
        console.print(f"  [dim]·[/] {escape(check.detail)}")
    elif check.ok:
        console.print(f"  [green]✓[/] {text}")
    else:
        console.print(f"  [red]✗[/] {text}")
        for problem in check.problems if check.problems != [check.detail] else []:
            console.print(f"      - {escape(problem)}")


def _server(console: Console, server: ServerHealth) -> None:
    console.print(f"[bold]{escape(f'{_HEADINGS.get(server.kind, server.kind)} {server.server}'.strip())}[/]")
    if not server.checks:  # not usable at all: its reason is the one problem
        reason = server.reason or "no answer"
        console.print(f"  [red]✗[/] {escape(f'not usable: {reason}' if server.kind else reason)}")
    for check in server.checks:
        _check(console, check)


def render_report(report: DoctorReport, console: Console) -> bool:
    """Print ``report`` on ``console``; True when it is healthy (the command's exit code follows it)."""
    if report.workflows:
        console.print("[bold]Workflows[/]")
    for check in report.workflows:
        _check(console, check)
    for server in report.servers:
        _server(console, server)
    if report.narration:
        console.print(f"[bold]Narration: {escape(report.narration_engine)}[/]")
    for check in report.narration:
        _check(console, check, named=False)
    if report.problems:
        console.print(f"[bold red]✗ {report.problems} problem{'s' if report.problems != 1 else ''}[/]")
    else:
        console.print("[bold green]✓ all good[/]")
    return report.healthy


async def run_doctor(settings: Settings, console: Console, *, check_motion: bool = False) -> bool:
    """Check what ``settings`` name (:func:`~sceneforge.doctor.doctor_report`) and print the report."""
    return render_report(await doctor_report(settings, check_motion=check_motion), console)
