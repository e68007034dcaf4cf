"""Running one ffmpeg: progress from ``-progress pipe:1``, cancellation, and its errors.

The progress lines are read in a helper thread; the calling thread waits on the
cancel event and reports progress, so a callback that raises, a
``KeyboardInterrupt``, or a set cancel event all end the ffmpeg process
(terminate, then kill) before this function returns.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from ..errors import GenerationError, RenderCancelledError

__all__ = ["ProgressCallback", "run_ffmpeg"]

#: ``on_progress(seconds_done, seconds_total)``.
ProgressCallback = Callable[[float, float], None]
POLL = 0.1  # seconds between progress reports


def _read_progress(stream: IO[bytes], latest: list[float]) -> None:
    for raw in stream:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            latest[0] = max(latest[0], int(value) / 1e6)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ffmpeg(
    cmd: Sequence[str], *, cwd: Path, log: Path, what: str, total: float = 0.0,
    on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
) -> str:
    """Run ``cmd`` (which must include ``-progress pipe:1``) in ``cwd``; return its log.

    Raises :class:`RenderCancelledError` when ``cancel`` is set, and
    :class:`GenerationError` with ffmpeg's last lines when it fails.
    """
    cancel = cancel or threading.Event()
    latest = [0.0]
    with log.open("wb") as err:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        reader = threading.Thread(target=_read_progress, args=(proc.stdout, latest), daemon=True)
        reader.start()
        try:
            shown = -1.0
            while proc.poll() is None:
                if cancel.wait(POLL):
                    raise RenderCancelledError(f"{what} was cancelled")
                if on_progress is not None and latest[0] != shown:
                    shown = latest[0]
                    on_progress(min(shown, total), total)
        finally:
            _stop(proc)
            reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
    text = log.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-8:])
        raise GenerationError(f"ffmpeg failed while making {what} (exit {proc.returncode}): {tail}",
                              server_message=tail)
    if on_progress is not None:
        on_progress(total, total)
    return text
