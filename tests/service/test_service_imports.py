"""The service is a face over the public library (issue #18.1): every name it takes from sceneforge comes
from what ``sceneforge`` or ``sceneforge.pipeline`` export (their ``__all__``), never from a module below
them. Checked on the source with :mod:`ast` (lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import sceneforge
import sceneforge.pipeline

SERVICE = Path(sceneforge.__file__).parent / "service"
#: The faces themselves: the service, and the agent tools it serves at /mcp (issue #20), beside it.
FACES = ("sceneforge.service", "sceneforge.mcp")
PUBLIC = {"sceneforge": set(sceneforge.__all__), "sceneforge.pipeline": set(sceneforge.pipeline.__all__)}


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def test_the_service_imports_only_public_names_of_the_library():
    offenders = []
    for path in sorted(SERVICE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = "sceneforge.service"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(node.module, node.level, package)
                if not target.startswith("sceneforge") or target.startswith(FACES):
                    continue
                names = {a.name for a in node.names}
                if target not in PUBLIC or not names <= PUBLIC[target]:
                    offenders.append(f"{path.name}:{node.lineno}: from {target} import "
                                     f"{', '.join(sorted(names - PUBLIC.get(target, set())))}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names
                              if a.name.startswith("sceneforge.") and not a.name.startswith(FACES)]
    assert not offenders, "the service reaches below the public library:\n" + "\n".join(offenders)
    assert len(list(SERVICE.rglob("*.py"))) > 15  # it did look at the service
