"""Running the app on uvicorn: listening, printing the URL, stopping cleanly.

uvicorn's own graceful shutdown waits for every open connection to finish before
the app's lifespan ends, and an SSE stream never finishes by itself. So
:class:`ServiceServer` first interrupts the jobs (their ComfyUI jobs stay journaled
on the servers) and ends every event stream, and only then lets uvicorn close the
connections and run the lifespan's end (backends and the server pool close).
Ctrl-C and SIGTERM both go this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from .. import ServerUnavailableError, Settings
from .app import create_app
from .auth import check_bind
from .events import StalledClient
from .service import Service

__all__ = ["ServiceServer", "serve", "start_server", "bind_socket", "service_url"]

log = logging.getLogger("sceneforge.service")


def _stalled(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_stalled(e) for e in exc.exceptions)
    return isinstance(exc, StalledClient)


class _StalledStreams(logging.Filter):
    """A stream dropped for not reading is no error of the app: one warning line instead of a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _stalled(record.exc_info[1]):
            log.warning("dropped an event stream: %s", record.exc_info[1])
            return False
        return True


_STALLED_FILTER = _StalledStreams()


class ServiceServer(uvicorn.Server):
    """uvicorn with the service's shutdown order; ``signals=False`` leaves signal handling to the caller (tests)."""

    def __init__(self, config: uvicorn.Config, service: Service, *, signals: bool = True) -> None:
        super().__init__(config)
        self.service = service
        self.signals = signals
        self.ready = asyncio.Event()  # set once it listens and the service has started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # Where it listens: a webhook may never point back here (.targets).
            self.service.listening = [s.getsockname()[:2] for s in sockets or ()] or [
                (self.config.host, self.config.port)]
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM start the clean shutdown; after it the process exits 0 (uvicorn's own
        handling would raise the signal again once shut down, ending the process by the signal)."""
        if not self.signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        before = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.service.stop_jobs()
        await super().shutdown(sockets)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: a free one), IPv6 when ``host`` is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def service_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_server(service: Service, *, log_level: str = "warning", signals: bool = True) -> ServiceServer:
    """The uvicorn server for ``service`` (its app built here)."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _STALLED_FILTER not in uvicorn_log.filters:
        uvicorn_log.addFilter(_STALLED_FILTER)
    config = uvicorn.Config(create_app(service), log_level=log_level, lifespan="on", timeout_graceful_shutdown=10,
                            access_log=log_level in ("info", "debug"), proxy_headers=False)
    return ServiceServer(config, service, signals=signals)


async def start_server(service: Service, sock: socket.socket, *, log_level: str = "warning", signals: bool = True
                       ) -> tuple[ServiceServer, asyncio.Task[None]]:
    """Run ``service`` on the listening ``sock`` in this loop; returns once it listens (``server.ready``) or
    failed to start, with the task that serves until ``server.should_exit``."""
    server = build_server(service, log_level=log_level, signals=signals)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    ready = asyncio.ensure_future(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    return server, task


def serve(settings: Settings, *, on_ready: Callable[[str], None] = print, log_level: str = "warning") -> None:
    """``sceneforge serve``: check the address rules, listen, print the URL, run until Ctrl-C or SIGTERM."""
    token = settings.serve_token.get_secret_value() if settings.serve_token else None
    check_bind(settings.serve_host, token)
    sock = bind_socket(settings.serve_host, settings.serve_port)

    async def main() -> None:
        server, task = await start_server(Service(settings), sock, log_level=log_level)
        if server.ready.is_set():
            on_ready(service_url(sock))
        await task
        if not server.ready.is_set():
            raise ServerUnavailableError("the service did not start (the reason is above)")

    try:
        asyncio.run(main())
    finally:
        sock.close()
