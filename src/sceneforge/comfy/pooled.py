"""What the ``comfyui`` image backend and the ``wan`` motion backend share: a server pool."""

from __future__ import annotations

from typing import Any

from .client import ComfyClient
from .pool import ComfyPool

__all__ = ["PoolUser"]


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
