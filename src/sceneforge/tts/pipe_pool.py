"""A pool of worker processes spoken to over pipes (used by the espeak backend).

Why not :mod:`multiprocessing`: its ``spawn`` and ``forkserver`` children re-run
the parent's main module (``spawn.get_preparation_data`` hands them
``init_main_from_path``), so a user's script without an
``if __name__ == "__main__":`` guard runs once more in every worker; ``fork``
is unsafe in a process running an event loop and threads. Here each worker is a
plain ``subprocess`` running a given command (``python -P worker.py``): it never
sees the parent's ``__main__``, and starting it costs Python's start-up only.

* ``size`` workers at most, started on demand; one call at a time per worker,
  driven by one thread each (blocking pipe I/O), so the pool works from any
  event loop (a sync caller's ``asyncio.run``, a service's loop) and queues
  calls beyond ``size``.
* A call that times out or is cancelled kills the worker it was running on (a
  stuck synthesis must not hold a worker forever); a worker that dies (killed,
  crashed) fails only its own call with :class:`WorkerDied`. Either way the
  next call starts a fresh worker in its place; the others keep running.
* Workers end when their stdin closes: on :meth:`close`, or when this process
  dies, however it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .frames import FrameError, read_message, write_message

__all__ = ["WorkerPool", "WorkerDied"]


class WorkerDied(RuntimeError):
    """A worker process ended, or could not start, before it answered."""


class _Abandoned(Exception):
    """The call was given up (timeout, cancel, close) before it took a worker."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None) -> None:
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=None if env is None else dict(env)
            )
        except OSError as exc:
            raise WorkerDied(f"could not start ({exc.strerror or exc})") from exc
        self.answered = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, header: dict[str, Any], blob: bytes) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            write_message(self.proc.stdin, header, blob)
            reply = read_message(self.proc.stdout)
        except (OSError, EOFError, FrameError) as exc:
            raise self._died(exc) from None
        if reply is None:
            raise self._died(None)
        self.answered = True
        return reply

    def _died(self, exc: BaseException | None) -> WorkerDied:
        if isinstance(exc, FrameError):
            return WorkerDied(f"sent an unreadable reply ({exc})")
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return WorkerDied("stopped answering")
        when = "" if self.answered else " before its first answer (its error output, if any, is above)"
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return WorkerDied(f"{how}{when}")

    def signal_kill(self) -> None:
        """SIGKILL without waiting (safe from any thread; the owner reaps it)."""
        with contextlib.suppress(OSError):
            self.proc.kill()

    def kill(self) -> None:
        self.signal_kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._close_pipes()

    def close_stdin(self) -> None:
        """The worker's signal to exit once it has answered."""
        self._close_pipes(stdout=False)

    def stop(self, grace: float = 2.0) -> None:
        """Close stdin, wait a little for the exit, then kill."""
        self.close_stdin()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _close_pipes(self, *, stdout: bool = True) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout if stdout else None):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class _Job:
    """One call's state shared between the event loop and the thread running it."""

    __slots__ = ("abandoned", "worker")

    def __init__(self) -> None:
        self.abandoned = False
        self.worker: _Worker | None = None


class WorkerPool:
    """Up to ``size`` processes running ``argv``, each answering one message at a time."""

    def __init__(self, argv: Sequence[str], size: int, *, env: Mapping[str, str] | None = None, name: str = "worker") -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.argv = list(argv)
        self.size = size
        self._env = env
        self._threads = ThreadPoolExecutor(size, thread_name_prefix=f"sceneforge-{name}")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers (for diagnostics and tests)."""
        with self._lock:
            return sorted(w.pid for w in self._live)

    async def call(self, header: dict[str, Any], blob: bytes = b"", *, timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        """Send one message to a free worker and return its reply ``(header, blob)``.

        Raises :class:`TimeoutError` after ``timeout`` seconds (waiting for a free worker
        included) and :class:`WorkerDied` when the worker ended before answering.
        """
        job = _Job()
        try:
            fut = self._threads.submit(self._run, job, header, blob)
        except RuntimeError as exc:  # submitted after close()
            raise WorkerDied("the pool is closed") from exc
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.wrap_future(fut)
        except _Abandoned:
            raise WorkerDied("the pool was closed while the call waited for a worker") from None
        except BaseException:
            self._abandon(job)
            raise

    def _run(self, job: _Job, header: dict[str, Any], blob: bytes) -> tuple[dict[str, Any], bytes]:
        worker = self._checkout(job)
        try:
            reply = worker.call(header, blob)
        except BaseException:
            self._discard(worker)
            raise
        self._checkin(worker, job)
        return reply

    def _checkout(self, job: _Job) -> _Worker:
        with self._lock:
            if job.abandoned or self._closed:
                raise _Abandoned
            worker = self._idle.pop() if self._idle else None
            job.worker = worker
        if worker is not None:
            return worker
        worker = _Worker(self.argv, self._env)  # outside the lock: starting a process takes a while
        with self._lock:
            if not (job.abandoned or self._closed):
                self._live.add(worker)
                job.worker = worker
                return worker
        worker.kill()
        raise _Abandoned

    def _checkin(self, worker: _Worker, job: _Job) -> None:
        with self._lock:
            job.worker = None
            keep = not (job.abandoned or self._closed)  # an abandoned job's worker was sent SIGKILL
            if keep:
                self._idle.append(worker)
            else:
                self._live.discard(worker)
        if not keep:
            worker.kill()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)
            with contextlib.suppress(ValueError):
                self._idle.remove(worker)
        worker.kill()

    def _abandon(self, job: _Job) -> None:
        with self._lock:
            job.abandoned = True
            worker = job.worker
        if worker is not None:
            worker.signal_kill()  # its thread sees the pipe close, reaps it and frees the slot

    def close(self) -> None:
        """Stop every worker: idle ones exit when their stdin closes, busy ones are killed."""
        with self._lock:
            self._closed = True
            idle, busy = list(self._idle), self._live - set(self._idle)
            self._idle.clear()
            self._live.clear()
        for worker in busy:
            worker.signal_kill()  # their threads reap them
        for worker in idle:
            worker.close_stdin()  # all at once, then wait: they exit together
        for worker in idle:
            worker.stop()
        # Calls still queued find the pool closed and fail with WorkerDied (not a stray CancelledError).
        self._threads.shutdown(wait=True)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)
