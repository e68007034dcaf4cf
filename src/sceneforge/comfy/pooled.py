"""What the ``comfyui`` image backend and the ``wan`` motion backend share: a server pool."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import ServerUnavailableError, TransientError
from .client import ComfyClient
from .pool import ComfyPool

__all__ = ["PoolUser", "resume_job", "secret_headers", "pool_from_settings"]

log = logging.getLogger("sceneforge.comfy")


def secret_headers(settings: Any) -> dict[str, str] | None:
    """The configured ComfyUI headers with their secret values, for the HTTP client only."""
    headers = {k: v.get_secret_value() for k, v in settings.comfy_headers.items()}
    return headers or None


def pool_from_settings(settings: Any) -> ComfyPool:
    """A pool of every configured server."""
    from .pool_factory import clients_from_settings

    return ComfyPool(clients_from_settings(settings), outage_grace=settings.comfy_outage_grace)


async def resume_job(pool: ComfyPool, entry: dict[str, Any], *, timeout: float | None = None) -> tuple[Any, Any] | None:
    """Re-attach to a journaled job: ``(client, JobResult)``, or None to submit afresh.

    Only the server that ran it can have it; when that server is gone or does not
    know the job any more, the caller simply runs the job again.
    """
    srv = pool.find(entry["server"])
    if srv is None:
        return None
    try:
        result = await srv.client.resume(entry["prompt_id"], entry["client_id"], timeout=timeout)
    except (ServerUnavailableError, TransientError) as exc:
        log.info("could not resume job %s on %s: %s", entry["prompt_id"], srv.name, exc)
        return None
    return (srv.client, result) if result is not None else None


class PoolUser:
    """A backend that runs its jobs on a :class:`ComfyPool`.

    Given a ``pool`` it shares it (image and motion jobs, several topics) and
    leaves closing it to its owner; otherwise it builds a pool of one server
    from ``client`` or ``url`` and closes it in :meth:`aclose`.
    """

    #: Jobs in flight are limited by the pool (one running and one queued per server), not here.
    max_concurrency = 64

    def _init_pool(
        self,
        *,
        pool: ComfyPool | None,
        client: ComfyClient | None,
        url: str,
        headers: dict[str, Any] | None,
        timeout: float,
    ) -> None:
        if pool is not None:
            self.pool, self._own_pool = pool, False
        else:
            client = client if client is not None else ComfyClient(url, headers=headers, timeout=timeout)
            self.pool, self._own_pool = ComfyPool([client]), True

    @classmethod
    def _build(cls, settings: Any, pool: ComfyPool | None, workflow: Any, **options: Any) -> Any:
        """Construct from settings: the shared ``pool``, or a pool of every configured server owned
        (and closed) by the new backend."""
        backend = cls(  # type: ignore[call-arg]
            workflow,
            url=settings.comfy_urls[0],
            headers=secret_headers(settings),
            timeout=settings.comfy_timeout,
            pool=pool if pool is not None else pool_from_settings(settings),
            **options,
        )
        backend._own_pool = pool is None
        return backend

    @property
    def client(self) -> Any:
        """The first server's client (the only one unless a shared pool was given)."""
        return self.pool.servers[0].client

    @property
    def server(self) -> str:
        """The first server's URL, credentials redacted."""
        return str(self.client.server)

    def _job_events(self, scene: int, client: Any) -> Callable[[str, dict[str, Any]], None]:
        """The client's job events as sceneforge events (``job_queued``, ``job_progress``)."""

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "queued":
                self._event("job_queued", scene, server=client.server, prompt_id=data["prompt_id"])  # type: ignore[attr-defined]
            elif kind == "progress":
                self._event("job_progress", scene, server=client.server, prompt_id=data["prompt_id"],  # type: ignore[attr-defined]
                            node=data.get("node"), value=data.get("value"), max=data.get("max"))

        return on_event

    def _failover_warning(self, scene: int) -> Callable[[Any, BaseException], None]:
        """Tell the user when the pool moves a scene's job off a server that stopped answering."""

        def moved(srv: Any, exc: BaseException) -> None:
            self._event("warning", scene,  # type: ignore[attr-defined]
                        message=f"{srv.name} stopped answering ({exc}); moving scene {scene} to another server")

        return moved

    async def start(self) -> None:
        """Health-check the pool's servers once: ServerUnavailableError when none answers."""
        await self.pool.start()

    async def aclose(self) -> None:
        """Close the pool if this backend made it."""
        if self._own_pool:
            await self.pool.aclose()
