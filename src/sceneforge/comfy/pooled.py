"""What the ``comfyui`` image backend and the ``wan`` motion backend share: a server pool."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ServerUnavailableError, TransientError
from .client import ComfyClient
from .pool import ComfyPool

__all__ = ["PoolUser", "resume_job"]

log = logging.getLogger("sceneforge.comfy")


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

    @property
    def client(self) -> Any:
        """The first server's client (the only one unless a shared pool was given)."""
        return self.pool.servers[0].client

    @property
    def server(self) -> str:
        """The first server's URL, credentials redacted."""
        return str(self.client.server)

    async def start(self) -> None:
        """Health-check the pool's servers once: ServerUnavailableError when none answers."""
        await self.pool.start()

    async def aclose(self) -> None:
        """Close the pool if this backend made it."""
        if self._own_pool:
            await self.pool.aclose()
