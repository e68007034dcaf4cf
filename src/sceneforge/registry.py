"""A tiny name -> class registry, one per kind of backend (like llm's model plugins)."""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Backends register under a name; modules listed in ``lazy`` are imported on first lookup."""

    def __init__(self, kind: str, lazy: dict[str, str]) -> None:
        self.kind = kind
        self._lazy = dict(lazy)  # name -> module path, imported when first asked for
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str):  # type: ignore[no-untyped-def]
        def deco(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def get(self, name: str) -> type[T]:
        if name not in self._classes and name in self._lazy:
            importlib.import_module(self._lazy[name])
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} backend {name!r}; choose from {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(set(self._lazy) | set(self._classes))
