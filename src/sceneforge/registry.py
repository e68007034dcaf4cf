"""Backends by name, one registry per kind, extended by other packages through entry points.

Built-in backends and third-party ones load the same way, as :mod:`llm`'s model
plugins do: a package declares an entry point in the group of its kind
(``sceneforge.tts``, ``sceneforge.image``, ``sceneforge.motion``) whose value is
the backend class (``name = "package.module:Class"``); the entry point's name is
the backend's name. sceneforge's own backends are declared the same way in its
``pyproject.toml``; a copy of that table (``builtin``) keeps them findable when
the package runs from a source tree without installed metadata.

A class can also be registered in code with :meth:`Registry.register` (tests,
notebooks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> backend class for one kind of backend (``group`` is its entry-point group)."""

    def __init__(self, kind: str, group: str, builtin: dict[str, str]) -> None:
        self.kind = kind
        self.group = group
        self._builtin = dict(builtin)  # name -> "module:Class", used when metadata is missing
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make ``cls`` available as ``name``."""

        def deco(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def _entry_points(self) -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`ConfigError` listing the known names otherwise."""
        if name in self._classes:
            return self._classes[name]
        target = None
        eps = self._entry_points()
        if name in eps:
            target = eps[name].value
        elif name in self._builtin:
            target = self._builtin[name]
        if target is None:
            raise ConfigError(f"unknown {self.kind} backend {name!r}; choose from {', '.join(self.names())}")
        cls = self._load(name, target)
        self._classes[name] = cls
        cls.name = name  # type: ignore[attr-defined]
        return cls

    def _load(self, name: str, target: str) -> type[T]:
        module_name, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{self.kind} backend {name!r} ({target}) cannot be loaded: {exc}") from exc
        if not isinstance(obj, type):
            raise ConfigError(f"{self.kind} backend {name!r} ({target}) is not a class")
        return obj

    def names(self) -> list[str]:
        """Every name a backend can be chosen by (built-in, installed plugins, registered in code)."""
        return sorted(set(self._builtin) | set(self._entry_points()) | set(self._classes))
