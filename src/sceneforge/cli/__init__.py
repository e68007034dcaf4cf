"""The ``sceneforge`` command line (typer): ``run``, ``preview``, ``doctor``, ``workflow inspect``."""

from .app import app, main

__all__ = ["app", "main"]
