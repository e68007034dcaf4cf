"""What every command shares: the error console, exit codes, and turning an error into one clear message.

Exit codes: 0 done, 2 bad input or usage, 1 generation failed. Errors are printed
as one clear message, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.traceback import Traceback

from ..errors import (
    ConfigError,
    InputFileMissingError,
    SceneValidationError,
    UnsafePathError,
    WorkflowError,
    error_text,
)

__all__ = ["err", "fail", "overrides", "BAD_INPUT"]

err = Console(stderr=True, highlight=False, soft_wrap=True)

#: Errors that mean the input or the command line is wrong (exit 2).
BAD_INPUT = (SceneValidationError, ConfigError, UnsafePathError, WorkflowError, InputFileMissingError)


def fail(exc: BaseException, debug: bool = False, console: Console | None = None) -> int:
    """Print an error cleanly and return its exit code."""
    console = console or err
    code = 2 if isinstance(exc, BAD_INPUT) else 1
    if isinstance(exc, (SceneValidationError, InputFileMissingError)) and len(exc.problems) > 1:
        console.print(f"[bold red]error:[/] {len(exc.problems)} problems in the input:")
        for p in exc.problems:
            console.print(f"  - {p}", markup=False)
    else:
        console.print("[bold red]error:[/] ", end="")
        console.print(error_text(exc), markup=False)
    if debug:
        console.print(Traceback.from_exception(type(exc), exc, exc.__traceback__))
    return code


def overrides(**kw: Any) -> dict[str, Any]:
    """The flags that were given (typer passes None for the others)."""
    return {k: v for k, v in kw.items() if v is not None}
