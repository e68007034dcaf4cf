"""What one running service holds: settings, the engine, the topic store, the event hub, the queue.

Built from settings (the same layers as ``sceneforge run``); time is injected
(``sleep`` for the engine's retry waits and the webhooks' backoff, ``clock`` for
timestamps), so the tests drive it without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import Settings
from ..pipeline import Engine
from .actions import TopicActions
from .events import EventHub
from .jobs import JobQueue
from .store import TopicStore
from .targets import WebhookTargets
from .webhooks import WebhookSender

__all__ = ["Service"]


@dataclass
class Service:
    """The service's parts; :meth:`start` and :meth:`stop` bracket its life (the app's lifespan)."""

    settings: Settings
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    keepalive: float = 15.0  # seconds between SSE keep-alive comments
    send_timeout: float = 30.0  # seconds one write to an event stream may wait before its client is dropped
    engine: Engine = field(init=False)
    store: TopicStore = field(init=False)
    hub: EventHub = field(init=False)
    targets: WebhookTargets = field(init=False)
    webhooks: WebhookSender = field(init=False)
    jobs: JobQueue = field(init=False)
    actions: TopicActions = field(init=False)
    listening: list[tuple[str, int]] = field(default_factory=list, init=False)  # set once the server listens
    _stopped: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.engine = Engine(self.settings, sleep=self.sleep)
        self.store = TopicStore(self.settings.out_dir, clock=self.clock)
        self.hub = EventHub()
        secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else None
        self.targets = WebhookTargets(self.settings.serve_webhook_allow, own=lambda: self.listening)
        self.webhooks = WebhookSender(secret=secret, sleep=self.sleep, targets=self.targets, clock=self.clock)
        self.jobs = JobQueue(base=self.settings, engine=self.engine, store=self.store, hub=self.hub,
                             webhooks=self.webhooks, clock=self.clock)
        self.actions = TopicActions(self.jobs, self.targets)

    @property
    def out_dir(self) -> Path:
        return Path(self.settings.out_dir)

    async def start(self) -> None:
        """Create ``--out``, learn its topics and resume the unfinished ones."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        await self.jobs.start()

    async def stop_jobs(self) -> None:
        """Interrupt the jobs (their ComfyUI jobs stay on the servers) and end every event stream."""
        if not self.jobs.closing:
            await self.jobs.shutdown()
        self.hub.close_all()

    async def stop(self) -> None:
        """Everything :meth:`stop_jobs` does, then close the engine (backends and the server pool)."""
        if self._stopped:
            return
        self._stopped = True
        await self.stop_jobs()
        await self.engine.aclose()
