"""What every backend has in common, and what a run lends to them.

A backend is a small class with strict options, built by
``from_settings(settings, resources)``, that makes one asset per call. It never
reads configuration files, prints, or holds run state: each call gets a request
(the scene's inputs and where to write) and a :class:`~sceneforge.events.Reporter`
already bound to the topic, stage and scene. Kinds:

* :class:`sceneforge.tts.TTSBackend` - ``synthesize(SpeechRequest, report)``
* :class:`sceneforge.images.ImageBackend` - ``generate(ImageRequest, report)``
* :class:`sceneforge.motion.MotionBackend` - ``generate(MotionRequest, report)``

Each kind is a ``Backend`` of its request type (``TTSBackend`` is ``Backend[SpeechRequest]``), so a
backend's ``cache_key`` and the pipeline's steps are typed by it, and nothing needs an ``isinstance``.

The cache key of a scene's asset is ``cache_key(request)``: everything that
determines the file (the request's own inputs plus the backend's options), never
secrets, never where the job ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Self

    from .config import Settings
    from .layout import TopicLayout

__all__ = ["Backend", "BackendResources", "ServerPool", "KeyedRequest", "RequestT"]


class ServerPool(Protocol):
    """The shared ComfyUI pool as the engine and the service see it (:class:`sceneforge.comfy.pool.pool.ComfyPool`)."""

    async def start(self) -> None:
        """Health-check the members; ServerUnavailableError when none answers."""

    def keep_jobs_on_close(self) -> None:
        """Leave jobs abandoned from now on where they run (a service shutting down re-attaches later)."""

    async def aclose(self) -> None:
        """Stop probes and close every member."""


@dataclass
class BackendResources:
    """What a run shares between its backends and topics: the ComfyUI server pool (or none).

    The engine builds it once (:class:`sceneforge.pipeline.Engine`) and owns it; backends
    use it and never close it.
    """

    pool: ServerPool | None = None  # a ComfyPool; a protocol, so the core does not import the ComfyUI client

    @classmethod
    def none(cls) -> BackendResources:
        """No shared resources: a backend that needs a pool will say so when it is used."""
        return cls()


class KeyedRequest(Protocol):
    """A request that knows which of its fields decide the asset."""

    @property
    def scene(self) -> int: ...

    def key_fields(self) -> dict[str, Any]: ...


#: The request type of a backend kind (:class:`~sceneforge.tts.SpeechRequest`, ...).
RequestT = TypeVar("RequestT", bound=KeyedRequest)


class Backend(ABC, Generic[RequestT]):
    """Base of every backend kind, typed by the request it serves (``Backend[ImageRequest]``)."""

    #: The name it is registered under (set by the registry).
    name: ClassVar[str] = ""
    #: Calls that may run at once; ``None`` leaves it to the run's settings for the stage.
    max_concurrency: int | None = None

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, resources: BackendResources) -> Self:
        """Build the backend from the run's settings and shared resources."""

    async def start(self) -> None:
        """Check the engine is usable (the health check); raise ServerUnavailableError if not.

        Called once per stage of a topic before its first job; must be cheap to call again.
        """

    def fingerprint(self) -> dict[str, Any]:
        """The backend's options that change its output (never secrets, never the server)."""
        return {"engine": self.name}

    def cache_key(self, request: RequestT) -> dict[str, Any]:
        """Everything that determines the asset ``request`` asks for."""
        return {"request": request.key_fields(), "backend": self.fingerprint()}

    def forget(self, layout: TopicLayout, scene: int) -> None:
        """Drop resumable state about ``scene`` (a journaled server job).

        Called once the scene's asset is recorded in the cache, and before a forced re-roll
        (which must not re-attach to the previous job).
        """

    async def aclose(self) -> None:
        """Release what the backend itself opened (sessions, worker processes)."""
