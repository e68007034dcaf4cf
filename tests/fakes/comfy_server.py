"""A fake ComfyUI server on 127.0.0.1 that speaks the recorded protocol (``comfyui/PROTOCOL.md``).

Use it from async tests::

    async with FakeComfyServer(job_time=0.0) as srv:
        client = ComfyClient(srv.url)

or from sync / subprocess tests (its own loop in a thread)::

    with FakeComfyServer() as srv:      # == srv.start_in_thread() ... srv.stop()
        subprocess.run([...], env={**os.environ, "SCENEFORGE_COMFY_URLS": srv.url})

It validates POST /prompt against real ``/object_info`` specs, runs one job at a
time, sends the websocket sequence of ``run/01_normal`` (or ``02_cached_same`` for
an identical resubmission), writes history between ``execution_success`` and
``executing(null)``, serves the PNGs it made on ``/view``, and records what it saw
(``prompts``, ``jobs``, ``requests``, ``ws_connects``, ``queue_deletes``,
``interrupts``, ``binary_sent``). ``preview_frames`` makes it send the binary preview frames of a
server started with ``--preview-method auto`` (``comfy_previews.py``). Faults are switched with :meth:`FakeComfyServer.fault`.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .comfy_jobs import JobRunner
from .comfy_outputs import FileStore
from .comfy_routes import ComfyRoutes
from .comfy_validation import MODEL_FOLDERS, MODEL_INPUTS

__all__ = ["FakeComfyServer", "FAULTS", "load_object_info"]

_DATA = Path(__file__).with_name("comfy_object_info.json.gz")

#: Fault names accepted by :meth:`FakeComfyServer.fault`.
FAULTS = frozenset({
    "prompt_500",          # POST /prompt answers 500 text/plain
    "node_errors",         # POST /prompt answers 400 with a value_not_in_list node error
    "execution_error",     # the job fails at a node (params: node, exception_type, exception_message)
    "execution_interrupted",  # the job is interrupted at its first node (someone else pressed cancel)
    "ws_drop",             # the job's websocket is closed by the server after execution_start
    "ws_silent",           # no execution messages reach the client, though the job runs and history is written
    "hang",                # the job never finishes until interrupted
    "view_truncated",      # /view announces the full Content-Length, sends half, closes
    "view_404",            # /view answers 404
    "evil_filenames",      # output refs carry "../" names and absolute subfolders
    "upload_400",          # /upload/image answers 400
    "history_late",        # history is stored only after executing(null) (params: delay)
    "history_500",         # GET /history/<id> answers 500 (the health check still answers)
    # Hostile servers (issue #11); see comfy_hostile.py. Every one stops by itself after a bound.
    "json_endless",        # a GET answers 200 with a JSON body that never ends (params: path)
    "json_huge",           # a GET answers 200 with a huge, well-formed JSON body (params: path, size)
    "view_endless",        # /view sends a valid PNG, then bytes forever
    "view_trickle",        # /view sends one byte every `interval` seconds (params: interval)
    "view_html",           # /view answers 200 with an HTML login page
    "view_short_png",      # /view sends the first 10 bytes of the PNG, with a matching Content-Length
    "ws_flood",            # every new websocket gets status messages without pause (params: interval)
})

_object_info_cache: dict[str, Any] | None = None


def load_object_info() -> dict[str, Any]:
    """The real ``/object_info`` of ComfyUI 0.33.0 (887 classes), read once per process."""
    global _object_info_cache
    if _object_info_cache is None:
        with gzip.open(_DATA, "rt", encoding="utf-8") as fh:
            _object_info_cache = json.load(fh)
    return _object_info_cache


class FakeComfyServer(ComfyRoutes):
    """The fake. ``job_time`` is how long each job computes (real seconds, default 0), or a
    function of the graph (e.g. images 0.2 s, Wan clips 0.6 s).

    ``history_delay`` delays storing history after ``execution_success`` (the race of
    PROTOCOL §4.4). ``outputs_for(graph)`` may return ``{node_id: ui_dict}`` to replace
    what output nodes produce (store files with :meth:`add_file` / :meth:`save_outputs`).
    ``models`` maps a model folder to the file names it "holds"; ``accept_any_model``
    makes every model name valid. ``require_headers`` / ``require_basic_auth`` make the
    server answer 401 without them.
    """

    def __init__(self, *, job_time: float | Callable[[dict[str, Any]], float] = 0.0, history_delay: float = 0.0,
                 object_info: dict[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.job_time = job_time
        self.history_delay = history_delay
        self.host = host
        self.port = port
        self._object_info = object_info if object_info is not None else load_object_info()
        self._object_info_key: Any = None
        self._object_info_now: dict[str, Any] = {}
        self.models: dict[str, list[str]] = {f: [] for f in MODEL_FOLDERS}
        self.accept_any_model = False
        self.cache_enabled = True
        #: ``--preview-method auto``: a binary preview frame after each sampler step (comfy_previews.py).
        self.preview_frames = False
        #: While an unset event: no job starts (they queue up), as on a busy GPU; set it to let them run.
        self.gate: asyncio.Event | None = None
        self.outputs_for: Callable[[dict[str, Any]], dict[str, dict[str, Any]] | None] | None = None
        self.require_headers: dict[str, str] = {}
        self.require_basic_auth: tuple[str, str] | None = None
        self.store = FileStore()
        self.store.add("example.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "", "input")
        self.faults: dict[str, dict[str, Any]] = {}
        # logs for tests
        self.prompts: list[Any] = []
        self.jobs: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.ws_connects: list[dict[str, Any]] = []
        self.queue_deletes: list[str] = []
        self.interrupts: list[dict[str, Any]] = []
        self.history_requests: list[tuple[str, bool]] = []
        self.binary_sent = 0  # binary (preview) frames sent
        self.hostile_sent: dict[str, int] = {}  # bytes (or frames, for ws_flood) a hostile mode managed to send
        # server state
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self._number = itertools.count()
        self.runner = JobRunner(self)
        self._app_runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeComfyServer:
        """Start listening (port 0 picks a free port, kept across restarts)."""
        self._loop = asyncio.get_running_loop()
        app = web.Application(middlewares=[self._middleware], client_max_size=200 * 1024 * 1024)
        for prefix in ("", "/api"):
            app.router.add_routes(self._routes(prefix))
        self._app_runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._app_runner.setup()
        await self.start_listening()
        self.runner.start()
        return self

    async def start_listening(self) -> None:
        """(Re)open the port; connections succeed again."""
        assert self._app_runner is not None
        self._site = web.TCPSite(self._app_runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop_listening(self) -> None:
        """Close the port, then every websocket and kept-alive connection, as a dying process would:
        new connections are refused (the port first, so no reconnect slips in meanwhile)."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        await self._close_sockets()
        server = self._app_runner.server if self._app_runner is not None else None
        for conn in list(getattr(server, "connections", None) or []):
            conn.force_close()

    async def restart(self, down_for: float = 0.0) -> None:
        """Simulate a server restart: the queue, history, sockets and cache are forgotten."""
        await self.stop_listening()
        await self.runner.forget_everything()
        self.history.clear()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start_listening()

    async def aclose(self) -> None:
        await self.runner.stop()
        await self._close_sockets()
        if self._app_runner is not None:
            await self._app_runner.cleanup()
            self._app_runner = None

    async def _close_sockets(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        self.sockets.clear()

    async def __aenter__(self) -> FakeComfyServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- thread mode --------------------------------------------------------
    def start_in_thread(self) -> FakeComfyServer:
        """Run the server on its own event loop in a daemon thread (for sync tests and subprocesses)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # report to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-comfyui", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine of this server (``srv.restart()``...) from another thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeComfyServer:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test helpers ---------------------------------------------------------
    def fault(self, name: str, times: int | None = None, **params: Any) -> None:
        """Switch a fault on (``times`` uses, or until :meth:`clear_faults`)."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; choose from {sorted(FAULTS)}")
        self.faults[name] = {"times": times, **params}

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, name: str) -> dict[str, Any] | None:
        """The parameters of an active fault, using up one of its ``times``."""
        spec = self.faults.get(name)
        if spec is None:
            return None
        if spec["times"] is not None:
            spec["times"] -= 1
            if spec["times"] <= 0:
                del self.faults[name]
        return spec

    def add_file(self, filename: str, data: bytes, subfolder: str = "", type: str = "output") -> dict[str, str]:
        """Make ``/view`` serve a file; returns its file ref."""
        return self.store.add(filename, data, subfolder, type)

    def save_outputs(self, prefix: str, blobs: list[bytes], ext: str = "png") -> list[dict[str, str]]:
        """Store files with ComfyUI's ``<prefix>_00001_.<ext>`` names; returns their refs."""
        return self.store.save(prefix, blobs, ext)

    def object_info(self) -> dict[str, Any]:
        """``/object_info`` as this server would answer now (models and inputs filled in).

        Rebuilt only when the models or the input files changed: every POST /prompt
        validates against it, and copying the specs each time made the fake, not the
        client, the main cost of a zero-time job in the benchmarks. Callers must not
        mutate the answer.
        """
        key = (tuple((k, tuple(v)) for k, v in self.models.items()), self.store.input_version, id(self._object_info))
        if self._object_info_key != key:
            self._object_info_now = self._build_object_info()
            self._object_info_key = key
        return self._object_info_now

    def _build_object_info(self) -> dict[str, Any]:
        info = dict(self._object_info)
        for (cls, name), folder in MODEL_INPUTS.items():
            if cls in info:
                spec = info[cls] = copy.deepcopy(info[cls])
                cfg = spec["input"]["required"].get(name) or spec["input"].get("optional", {}).get(name)
                if cfg is not None:
                    cfg[0] = (["pixel_space"] if cls == "VAELoader" else []) + list(self.models.get(folder, []))
        listed = (("LoadImage", "image", ("png", "jpg", "jpeg", "webp")), ("LoadVideo", "file", ("mp4", "webm", "mkv")))
        for cls, name, exts in listed:
            if cls in info:
                spec = info[cls] = copy.deepcopy(info[cls])
                cfg = spec["input"]["required"][name]
                names = self.store.input_names(exts)
                if isinstance(cfg[0], list):
                    cfg[0] = names
                else:
                    cfg[1]["options"] = names
        return info

    # --- websocket sends (used by the job runner) ---------------------------
    async def send(self, client_id: str | None, kind: str, data: dict[str, Any]) -> None:
        ws = self.sockets.get(client_id) if client_id else None
        if ws is not None and not ws.closed:
            try:
                await ws.send_json({"type": kind, "data": data})
            except (ConnectionError, RuntimeError):
                pass

    async def send_bytes(self, client_id: str, data: bytes) -> None:
        """A binary frame to one client (previews go only to the prompt's client, like its text frames)."""
        ws = self.sockets.get(client_id)
        if ws is not None and not ws.closed:
            try:
                await ws.send_bytes(data)
                self.binary_sent += 1
            except (ConnectionError, RuntimeError):
                pass

    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for ws in list(self.sockets.values()):
            if not ws.closed:
                try:
                    await ws.send_json({"type": kind, "data": data})
                except (ConnectionError, RuntimeError):
                    pass

    async def drop_socket(self, client_id: str) -> None:
        ws = self.sockets.get(client_id)
        if ws is not None:
            await ws.close()
