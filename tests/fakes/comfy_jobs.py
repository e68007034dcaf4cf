"""The fake ComfyUI server's queue and executor: one job at a time, like one GPU.

The websocket sequence of a run follows ``run/01_normal/ws.json`` (and
``run/02_cached_same`` for cached nodes); errors and interrupts follow
``runtime_error/ws.json`` and ``queue/09_ws_queue_clear_interrupt.json``.
History is stored after the terminal message and before ``status`` and
``executing(null)``, as the real worker does (PROTOCOL §4.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .comfy_outputs import render_output
from .comfy_previews import preview_frame
from .comfy_validation import is_link

if TYPE_CHECKING:
    from .comfy_server import FakeComfyServer

__all__ = ["JobRunner"]

_TRACEBACK = [
    '  File "COMFYUI_ROOT/execution.py", line 545, in execute\n    output_data, output_ui, has_subgraph, '
    "has_pending_tasks = await get_output_data(...)\n",
]


_RECORDED_MESSAGE = "index 3 is out of bounds for dimension 3 with size 3\n"


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Job:
    prompt_id: str
    number: float
    prompt: dict[str, Any]
    extra: dict[str, Any]
    outputs: list[str]
    record: dict[str, Any]
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    silent: bool = False

    @property
    def client_id(self) -> str | None:
        return self.extra.get("client_id")

    def queue_item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra, self.outputs]


@dataclass
class _Run:
    """What one execution of a job knows while it runs."""

    job: _Job
    order: list[str] = field(default_factory=list)
    sigs: dict[str, str] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    custom: dict[str, dict[str, Any]] | None = None
    error_fault: dict[str, Any] | None = None
    interrupt_fault: dict[str, Any] | None = None
    hang: dict[str, Any] | None = None
    evil: dict[str, Any] | None = None
    fail_at: str | None = None
    nap: float = 0.0  # GPU seconds per executed node
    began: float = 0.0  # loop time the first node started: node k ends at began + k * nap, however late a wake-up
    naps: int = 0
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs_ui: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    messages: list[list[Any]] = field(default_factory=list)


def _exec_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    """Dependencies first (post-order from each output), each node once."""
    order: list[str] = []

    def visit(nid: str) -> None:
        if nid in order or nid not in prompt:
            return
        for value in (prompt[nid].get("inputs") or {}).values():
            if is_link(value):
                visit(value[0])
        if nid not in order:
            order.append(nid)

    for out in outputs:
        visit(out)
    return order


class JobRunner:
    """Queue, executor and output cache of a :class:`FakeComfyServer`."""

    def __init__(self, srv: FakeComfyServer) -> None:
        self.srv = srv
        self.pending: list[_Job] = []
        self.running: _Job | None = None
        self.current_node: str | None = None
        self.cache: dict[str, dict[str, Any]] = {}
        self._order = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def forget_everything(self) -> None:
        """A restart: the running and pending jobs are lost, the cache is gone."""
        running = self.running  # read first: stopping the worker clears it
        await self.stop()
        for job in ([running] if running else []) + self.pending:
            job.record["status"] = "lost"
        self.pending.clear()
        self.running = None
        self.current_node = None
        self.cache.clear()
        self.start()

    # --- queue ------------------------------------------------------------------
    def remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    def queue_view(self) -> dict[str, Any]:
        return {
            "queue_running": [self.running.queue_item()] if self.running else [],
            "queue_pending": [j.queue_item() for j in self.pending],
        }

    def enqueue(self, pid: str, number: float, prompt: dict[str, Any], extra: dict[str, Any],
                outputs: list[str]) -> None:
        record = {"prompt_id": pid, "number": number, "graph": prompt, "client_id": extra.get("client_id"),
                  "outputs_to_execute": list(outputs), "status": "pending", "start": None, "end": None, "outputs": None}
        self.srv.jobs.append(record)
        self.pending.append(_Job(pid, number, prompt, extra, list(outputs), record))
        self.pending.sort(key=lambda j: j.number)
        asyncio.ensure_future(self._status())
        assert self._wake is not None
        self._wake.set()

    async def delete(self, pid: str) -> None:
        for job in list(self.pending):
            if job.prompt_id == pid:
                self.pending.remove(job)
                job.record["status"] = "deleted"
                await self._status()

    async def clear_pending(self) -> None:
        for job in self.pending:
            job.record["status"] = "deleted"
        self.pending.clear()
        await self._status()

    def interrupt(self, pid: str | None) -> None:
        """Interrupt the running job if ``pid`` is it (or no ``pid``: whatever runs)."""
        if self.running is not None and pid in (None, self.running.prompt_id):
            self.running.interrupt.set()

    def current_node_for(self, client_id: str) -> str | None:
        if self.running is not None and self.running.client_id == client_id:
            return self.current_node
        return None

    async def _status(self) -> None:
        await self.srv.broadcast("status", {"status": {"exec_info": {"queue_remaining": self.remaining()}}})

    # --- execution --------------------------------------------------------------
    async def _worker(self) -> None:
        assert self._wake is not None
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            if self.srv.gate is not None:
                await self.srv.gate.wait()  # the GPU is held: jobs queue up, none starts
                if not self.pending:
                    continue
            job = self.pending.pop(0)
            self.running = job
            try:
                await self._execute(job)
            finally:
                self.running = None
                self.current_node = None

    async def _emit(self, job: _Job, kind: str, data: dict[str, Any]) -> None:
        if job.silent:
            return
        if job.client_id:
            await self.srv.send(job.client_id, kind, data)
        elif kind in ("progress_state", "execution_interrupted"):
            await self.srv.broadcast(kind, data)  # without a client these two go to everyone (§4.3)

    async def _executed(self, job: _Job, nid: str, ui: dict[str, Any]) -> None:
        await self._emit(job, "executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": job.prompt_id})

    async def _nap(self, job: _Job, seconds: float) -> bool:
        """Compute for ``seconds``; True if interrupted meanwhile."""
        if seconds <= 0:
            return job.interrupt.is_set()
        try:
            await asyncio.wait_for(job.interrupt.wait(), seconds)
            return True
        except TimeoutError:
            return False

    def _signature(self, prompt: dict[str, Any], nid: str, memo: dict[str, str]) -> str:
        if nid not in memo:
            node = prompt[nid]
            items = []
            for k, v in sorted((node.get("inputs") or {}).items()):
                linked = is_link(v) and v[0] in prompt
                items.append([k, ["link", self._signature(prompt, v[0], memo), v[1]] if linked else v])
            if node.get("class_type") == "LoadImage":  # IS_CHANGED: a changed file re-executes
                sub, _, name = str((node.get("inputs") or {}).get("image", "")).rpartition("/")
                items.append(hashlib.sha256(self.srv.store.get("input", sub, name) or b"").hexdigest())
            memo[nid] = json.dumps([node.get("class_type"), items], sort_keys=True, default=str)
        return memo[nid]

    async def _execute(self, job: _Job) -> None:
        srv, pid = self.srv, job.prompt_id
        job.record.update(status="running", start=next(self._order))
        job.silent = srv.take_fault("ws_silent") is not None
        await self._status()  # taken by the worker
        run = _Run(job)
        start = {"prompt_id": pid, "timestamp": _ms()}
        await self._emit(job, "execution_start", start)
        run.messages.append(["execution_start", start])
        drop = srv.take_fault("ws_drop")
        if drop and job.client_id:
            await srv.drop_socket(job.client_id)
            await asyncio.sleep(float(drop.get("pause", 0.05)))  # time for the client to reconnect
        self._plan(run)
        cached_msg = {"nodes": run.cached, "prompt_id": pid, "timestamp": _ms()}
        await self._emit(job, "execution_cached", cached_msg)
        run.messages.append(["execution_cached", cached_msg])
        end = await self._run_nodes(run)
        await self._finish(run, end)

    def _plan(self, run: _Run) -> None:
        """Execution order, cache hits and this run's faults."""
        srv, job = self.srv, run.job
        run.order = _exec_order(job.prompt, job.outputs)
        memo: dict[str, str] = {}
        run.sigs = {nid: self._signature(job.prompt, nid, memo) for nid in run.order}
        run.cached = [n for n in run.order if srv.cache_enabled and run.sigs[n] in self.cache]
        run.custom = srv.outputs_for(job.prompt) if srv.outputs_for else None
        run.error_fault = srv.take_fault("execution_error")
        run.interrupt_fault = srv.take_fault("execution_interrupted")
        run.hang = srv.take_fault("hang")
        run.evil = srv.take_fault("evil_filenames")
        uncached = [n for n in run.order if n not in run.cached]
        if run.error_fault:
            first = uncached[0] if uncached else None
            run.fail_at = run.error_fault.get("node") or next((n for n in uncached if n not in job.outputs), first)
        job_time = srv.job_time(job.prompt) if callable(srv.job_time) else srv.job_time  # per-graph GPU time
        run.nap = job_time / max(1, len(uncached))

    async def _progress_state(self, run: _Run, nid: str, value: float, maximum: float, state: str) -> None:
        pid = run.job.prompt_id
        run.states[nid] = {"value": value, "max": maximum, "state": state, "node_id": nid, "prompt_id": pid,
                           "display_node_id": nid, "parent_node_id": None, "real_node_id": nid}
        await self._emit(run.job, "progress_state", {"prompt_id": pid, "nodes": dict(run.states)})

    async def _run_nodes(self, run: _Run) -> tuple[str, dict[str, Any]] | None:
        """Execute the nodes in order; the terminal error or interrupt, or None on success."""
        job, prompt = run.job, run.job.prompt
        for nid in run.order:
            cls = prompt[nid].get("class_type")
            if nid in run.cached:
                ui = self.cache[run.sigs[nid]]
                run.new_cache[run.sigs[nid]] = ui
                if nid in job.outputs and ui:  # cached outputs are re-sent with the old files (§4.3)
                    run.outputs_ui[nid] = ui
                    await self._executed(job, nid, ui)
                    await self._progress_state(run, nid, 1, 1, "finished")
                continue
            await self._progress_state(run, nid, 0.0, 1.0, "running")
            self.current_node = nid
            await self._emit(job, "executing", {"node": nid, "display_node": nid, "prompt_id": job.prompt_id})
            if run.interrupt_fault or job.interrupt.is_set():
                return "execution_interrupted", {"node_id": nid, "node_type": cls}
            if run.hang:
                await job.interrupt.wait()
                return "execution_interrupted", {"node_id": nid, "node_type": cls}
            loop_now = asyncio.get_running_loop().time()
            run.began = run.began or loop_now
            run.naps += 1
            if await self._nap(job, run.began + run.naps * run.nap - loop_now):
                return "execution_interrupted", {"node_id": nid, "node_type": cls}
            await self._progress(run, nid)
            if nid == run.fail_at:
                return "execution_error", self._error_data(run, nid, cls)
            ui: dict[str, Any] = {}
            if nid in job.outputs:
                ui = run.custom[nid] if run.custom and nid in run.custom else render_output(prompt, nid, self.srv.store)
                if run.evil and ui.get("images"):
                    evil_refs = [{**r, "filename": "../../evil.png", "subfolder": "/etc"} for r in ui["images"]]
                    ui = {**ui, "images": evil_refs}
                if ui:
                    run.outputs_ui[nid] = ui
                    await self._executed(job, nid, ui)
            run.new_cache[run.sigs[nid]] = ui
            run.executed.append(nid)
            await self._progress_state(run, nid, 1.0, 1.0, "finished")
        return None

    async def _progress(self, run: _Run, nid: str) -> None:
        """``progress`` frames for a node with ``steps`` (a sampler): first, middle, last.

        With ``srv.preview_frames`` (a server started with ``--preview-method auto``) every step is
        reported, each ``progress`` text frame followed by a binary preview frame, as recorded in
        ``extra/10_binary_previews/ws_plain.json``.
        """
        steps = (run.job.prompt[nid].get("inputs") or {}).get("steps")
        if isinstance(steps, int) and steps > 0:
            previews = self.srv.preview_frames
            for value in range(1, steps + 1) if previews else sorted({1, max(1, steps // 2), steps}):
                await self._progress_state(run, nid, float(value), float(steps), "running")
                await self._emit(run.job, "progress",
                                 {"value": value, "max": steps, "prompt_id": run.job.prompt_id, "node": nid})
                if previews and not run.job.silent and run.job.client_id:
                    await self.srv.send_bytes(run.job.client_id, preview_frame(value))

    def _error_data(self, run: _Run, nid: str, cls: Any) -> dict[str, Any]:
        fault = run.error_fault
        assert fault is not None
        return {
            "node_id": nid, "node_type": cls, "executed": list(reversed(run.executed)),
            "exception_message": fault.get("exception_message", _RECORDED_MESSAGE),
            "exception_type": fault.get("exception_type", "IndexError"), "traceback": list(_TRACEBACK),
            "current_inputs": {k: [str(v)] for k, v in (run.job.prompt[nid].get("inputs") or {}).items()},
            "current_outputs": list(run.order)}

    async def _finish(self, run: _Run, end: tuple[str, dict[str, Any]] | None) -> None:
        """The terminal message, the history entry, then status and executing(null) (§4.4)."""
        srv, job, pid = self.srv, run.job, run.job.prompt_id
        if end is None:
            done = {"prompt_id": pid, "timestamp": _ms()}
            await self._emit(job, "execution_success", done)
            run.messages.append(["execution_success", done])
            status_str, status = "success", "success"
        else:
            kind, data = end
            data = {"prompt_id": pid, **data, "timestamp": _ms()}
            if kind == "execution_interrupted":
                data.setdefault("executed", list(reversed(run.executed)))
            await self._emit(job, kind, data)
            run.messages.append([kind, data])
            status_str, status = "error", ("interrupted" if kind == "execution_interrupted" else "error")
        if srv.cache_enabled:
            self.cache = run.new_cache  # the classic cache keeps the last prompt's nodes only
        if srv.history_delay:
            await asyncio.sleep(srv.history_delay)  # the race of §4.4: terminal message sent, history not yet
        outputs_ui = run.outputs_ui
        entry = {
            "prompt": [job.number, pid, job.prompt, job.extra, job.outputs],
            "outputs": outputs_ui,
            "status": {"status_str": status_str, "completed": end is None, "messages": run.messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in outputs_ui},
        }
        late = srv.take_fault("history_late")
        if late is None:
            srv.history[pid] = entry
        job.record.update(status=status, end=next(self._order), outputs=outputs_ui)
        self.running = None
        self.current_node = None
        await self._status()
        await self._emit(job, "executing", {"node": None, "prompt_id": pid})
        if late is not None:
            asyncio.get_running_loop().call_later(float(late.get("delay", 0.05)), srv.history.__setitem__, pid, entry)
