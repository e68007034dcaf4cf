"""The shape of the source: layers imported only downwards, no import circles, no module over 400 lines,
no function over 60 lines.

Every module under ``src/sceneforge`` is parsed with :mod:`ast` (nothing is
imported). The import graph has an edge for every ``import`` and
``from ... import`` statement, lazy ones inside functions included (a lazy
import is the usual way a circle gets hidden), relative imports resolved;
imports under ``if TYPE_CHECKING:`` are left out, since they never run.
Importing ``pkg.mod`` is an edge to ``pkg.mod`` only: Python initializes the
parent package first, but a package re-exporting its own submodules is no circle.
A failure lists every offender with file:line and size.

The layers (:data:`LAYERS`, lowest first; docs/architecture.md draws them): core < backends <
pipeline < faces. A module may import its own layer and those below it, never one above, lazily
or not (imports under ``if TYPE_CHECKING:`` never run, so they may point anywhere).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sceneforge"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: The layers, lowest first, each with the top-level modules and packages of ``sceneforge`` it holds
#: ("" is the package itself: ``sceneforge/__init__.py`` gathers the public API from every layer).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("scenes", "config", "layout", "cache", "takes", "retry", "errors", "events", "fsutil", "lock",
              "registry", "backend", "input_checks", "fonts", "media", "workflows")),
    ("backends", ("tts", "images", "motion", "comfy")),
    # the library over the backends: the engine and topic workspace, the preview and compose beside it, and what
    # the faces ask of the engines (their voices, their health)
    ("pipeline", ("pipeline", "preview", "compose", "voices", "doctor")),
    ("faces", ("cli", "service", "mcp", "integrations", "__main__", "")),
]


@dataclass
class Module:
    """One parsed module: its dotted name, file, line count, syntax tree."""

    name: str
    path: Path  # relative to the folder above ``src``, as a failure shows it
    lines: int
    tree: ast.Module
    is_package: bool
    imports: list[tuple[str, int]] = field(default_factory=list)  # (target module, line)


def load_modules(src: Path, package: str) -> dict[str, Module]:
    """Every ``.py`` file of ``src/package`` by dotted module name."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name, rel = ".".join(parts), path.relative_to(src.parent)
        modules[name] = Module(name, rel, len(text.splitlines()), ast.parse(text, str(rel)), is_package)
    for mod in modules.values():
        mod.imports = module_imports(mod, modules)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append(child)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:  # the else branch does run
                found += _import_nodes(ast.Module(body=[stmt], type_ignores=[]))
        else:
            found += _import_nodes(child)
    return found


def _resolve_base(mod: Module, node: ast.ImportFrom) -> str | None:
    """The absolute module a ``from X import ...`` names as X."""
    if node.level == 0:
        return node.module
    package = mod.name if mod.is_package else mod.name.rpartition(".")[0]
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None  # beyond the top-level package
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _existing(name: str | None, modules: dict[str, Module]) -> str | None:
    """``name`` if it is a module of the package, else its nearest ancestor that is."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def module_imports(mod: Module, modules: dict[str, Module]) -> list[tuple[str, int]]:
    """The package's modules ``mod`` imports, with the line of each import statement."""
    edges: list[tuple[str, int]] = []
    for node in _import_nodes(mod.tree):
        targets: list[str | None] = []
        if isinstance(node, ast.Import):
            targets = [_existing(alias.name, modules) for alias in node.names]
        else:
            base = _resolve_base(mod, node)
            for alias in node.names:  # ``from pkg import sub`` imports the submodule pkg.sub
                sub = f"{base}.{alias.name}" if base else None
                targets.append(sub if sub in modules else _existing(base, modules))
        edges += [(t, node.lineno) for t in targets if t is not None and t != mod.name]
    return list(dict.fromkeys(edges))  # one edge per target and line, however many names it imports


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components of ``graph`` (iterative, so a deep graph cannot overflow the stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(set(graph[root]))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(set(graph[child])))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(start: str, members: set[str], graph: dict[str, list[str]]) -> list[str]:
    """A shortest import path from ``start`` back to itself, inside one component."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(set(graph[node])):
                if child == start:
                    return paths[node] + [start]
                if child in members and child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    return [start]


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One report per import circle (a strongly connected group of modules).

    Each names every module of the group, a shortest cycle through it, and
    every import inside the group with its file:line: all a fix needs.
    """
    graph = {name: [t for t, _ in mod.imports] for name, mod in modules.items()}
    reports = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue  # self-imports are dropped in module_imports
        members = set(component)
        cycle = _shortest_cycle(component[0], members, graph)
        lines = [f"circle of {len(component)} modules: {', '.join(component)}",
                 f"  e.g. {' -> '.join(cycle)}"]
        for name in component:
            mod = modules[name]
            lines += [f"  {mod.path}:{line}: {name} imports {target}"
                      for target, line in mod.imports if target in members]
        reports.append("\n".join(lines))
    return reports


def long_modules(modules: dict[str, Module], limit: int = MAX_MODULE_LINES) -> list[str]:
    """``file:1: N lines`` for every module over ``limit`` lines, longest first."""
    over = sorted((m for m in modules.values() if m.lines > limit), key=lambda m: -m.lines)
    return [f"{m.path}:1: {m.lines} lines" for m in over]


def long_functions(modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line: name N lines`` for every function or method over ``limit`` lines, longest first.

    A def counts from its ``def`` line (decorators excluded) to its last line.
    """
    found = []
    for mod in modules.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if size > limit:
                    found.append((size, f"{mod.path}:{node.lineno}: {_qualname(mod.tree, node)} {size} lines"))
    return [text for _, text in sorted(found, key=lambda f: (-f[0], f[1]))]


def _qualname(tree: ast.Module, target: ast.AST) -> str:
    """``Class.method`` / ``outer.inner`` for a def found by :func:`ast.walk`."""

    def walk(node: ast.AST, prefix: str) -> str | None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if child is target:
                    return name
                found = walk(child, f"{name}.")
            else:
                found = walk(child, prefix)
            if found:
                return found
        return None

    return walk(tree, "") or "?"


def _report(title: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {title}:\n" + "\n".join(offenders)


def layer_of(name: str, package: str, layers: list[tuple[str, tuple[str, ...]]]) -> int | None:
    """The index of the layer holding module ``name`` (by its top-level part under ``package``), or None."""
    top = name[len(package) + 1:].split(".")[0] if name != package else ""
    return next((i for i, (_, members) in enumerate(layers) if top in members), None)


def unplaced_modules(modules: dict[str, Module], package: str, layers: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """``file:1: name`` for every module no layer holds."""
    return [f"{m.path}:1: {m.name}" for m in modules.values() if layer_of(m.name, package, layers) is None]


def upward_imports(modules: dict[str, Module], package: str, layers: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """``file:line: a (layer) imports b (higher layer)`` for every import of a module from a higher layer."""
    found = []
    for mod in modules.values():
        own = layer_of(mod.name, package, layers)
        for target, line in mod.imports:
            theirs = layer_of(target, package, layers)
            if own is not None and theirs is not None and theirs > own:
                found.append(f"{mod.path}:{line}: {mod.name} ({layers[own][0]}) imports {target} ({layers[theirs][0]})")
    return found


# --- the source tree --------------------------------------------------------------------

@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = load_modules(SRC, PACKAGE)
    assert f"{PACKAGE}.preview.video" in found and len(found) > 20
    return found


def test_every_module_has_a_layer(modules: dict[str, Module]) -> None:
    unplaced = unplaced_modules(modules, PACKAGE, LAYERS)
    assert not unplaced, _report("modules in no layer (add them to LAYERS and docs/architecture.md)", unplaced)


def test_no_module_imports_a_higher_layer(modules: dict[str, Module]) -> None:
    upward = upward_imports(modules, PACKAGE, LAYERS)
    assert not upward, _report("imports from a higher layer", upward)


def test_no_import_circles(modules: dict[str, Module]) -> None:
    cycles = import_cycles(modules)
    assert not cycles, _report("import circles", cycles)


def test_no_module_over_400_lines(modules: dict[str, Module]) -> None:
    over = long_modules(modules)
    assert not over, _report(f"modules over {MAX_MODULE_LINES} lines", over)


def test_no_function_over_60_lines(modules: dict[str, Module]) -> None:
    over = long_functions(modules)
    assert not over, _report(f"functions over {MAX_FUNCTION_LINES} lines", over)


# --- the checker itself, on a small made-up package -------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root/src``; return that ``src``."""
    src = root / "src"
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return src


def test_checker_finds_every_circle_with_its_modules(tmp_path: Path) -> None:
    src = _write(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",  # a package re-exporting a submodule: no circle
        "pkg/a.py": "from . import b\nx = 1\n",
        "pkg/b.py": "import pkg.sub.c\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "def f():\n    from ..a import x  # lazy, still a circle\n    return x\n",
        "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import y\nelse:\n    y = 0\n",
        "pkg/e.py": "from .d import y\n",
        "pkg/f.py": "from .g import z\n",
        "pkg/g.py": "from . import f\nz = 2\n",
    })
    cycles = import_cycles(load_modules(src, "pkg"))
    assert len(cycles) == 2, cycles
    three, two = sorted(cycles, key=len, reverse=True)
    assert three.startswith("circle of 3 modules: pkg.a, pkg.b, pkg.sub.c")
    assert "e.g. pkg.a -> pkg.b -> pkg.sub.c -> pkg.a" in three
    assert "src/pkg/sub/c.py:2: pkg.sub.c imports pkg.a" in three
    assert two.startswith("circle of 2 modules: pkg.f, pkg.g")
    assert "pkg.d" not in "".join(cycles)  # TYPE_CHECKING imports never run


def test_checker_measures_defs_without_decorators_and_modules(tmp_path: Path) -> None:
    ok = ["@functools.cache", "@functools.cache", "def ok():"] + [f"    x{i} = {i}" for i in range(58)] + ["    return 0"]
    slow = ["class C:", "    async def slow(self):"] + [f"        x{i} = {i}" for i in range(59)] + ["        return 1"]
    src = _write(tmp_path, {"pkg/__init__.py": "", "pkg/m.py": "\n".join(["import functools", "", *ok, "", *slow, ""])})
    mods = load_modules(src, "pkg")
    # ok() is 60 lines from its def (62 with its decorators): allowed. C.slow is 61: reported.
    assert long_functions(mods) == ["src/pkg/m.py:67: C.slow 61 lines"]
    assert mods["pkg.m"].lines == 127
    assert long_modules(mods, limit=127) == []
    assert long_modules(mods, limit=126) == ["src/pkg/m.py:1: 127 lines"]


def test_checker_finds_imports_from_a_higher_layer(tmp_path: Path) -> None:
    src = _write(tmp_path, {
        "pkg/__init__.py": "from .face import run\n",  # the package sits on top: it may gather anything
        "pkg/base.py": "def f():\n    from .engine import go  # lazy, still upward\n    return go\n",
        "pkg/kinds/__init__.py": "",
        "pkg/kinds/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..face import run\nfrom .. import base\n",
        "pkg/engine.py": "import pkg.kinds.a\nfrom . import face\ngo = 1\n",
        "pkg/face.py": "from .engine import go\nrun = go\n",
        "pkg/stray.py": "",
    })
    layers = [("low", ("base",)), ("mid", ("kinds",)), ("high", ("engine",)), ("top", ("face", ""))]
    mods = load_modules(src, "pkg")
    assert upward_imports(mods, "pkg", layers) == [
        "src/pkg/base.py:2: pkg.base (low) imports pkg.engine (high)",
        "src/pkg/engine.py:2: pkg.engine (high) imports pkg.face (top)",
    ]  # kinds.a's TYPE_CHECKING import of face never runs
    assert unplaced_modules(mods, "pkg", layers) == ["src/pkg/stray.py:1: pkg.stray"]
