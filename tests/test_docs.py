"""The documents point at tests that exist, and the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_docs_exists():
    refs = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        refs |= {(doc.name, m.group(1), m.group(2))
                 for m in re.finditer(r"(tests/[\w/]+\.py)::(\w+)", doc.read_text(encoding="utf-8"))}
    assert len(refs) > 20
    missing = [f"{doc}: {path}::{name}" for doc, path, name in sorted(refs)
               if not (ROOT / path).is_file() or not re.search(rf"def {name}\b", (ROOT / path).read_text())]
    assert not missing, "\n".join(missing)


def test_readme_opens_with_the_two_quickstart_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quickstart", 1)[1].split("```", 2)[1]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "sceneforge run" in commands[0] and "--offline" in commands[0]
    assert "pytest" in commands[1]


def test_the_recorded_comfyui_data_readme_counts_its_files():
    data = ROOT / "tests" / "data" / "comfyui"
    files = [f for f in data.rglob("*") if f.is_file() and f.name != "README.md"]
    m = re.search(r"\((\d+) files, ([\d,]+) bytes", (data / "README.md").read_text(encoding="utf-8"))
    assert m, "tests/data/comfyui/README.md no longer says how many files it holds"
    assert (int(m.group(1)), int(m.group(2).replace(",", ""))) == (len(files), sum(f.stat().st_size for f in files))


def test_every_module_is_named_in_the_architecture():
    """docs/architecture.md names every module file under src/sceneforge by its path there
    (``pipeline/steps.py``); a package's ``__init__.py`` is named by it or by its folder (``comfy/``)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    src = ROOT / "src" / "sceneforge"
    modules = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.py"))
    assert len(modules) > 100 and "pipeline/steps.py" in modules

    def named(rel: str) -> bool:
        if rel.endswith("__init__.py") and rel != "__init__.py":
            return rel in text or f"`{rel[: -len('__init__.py')]}`" in text
        return f"`{rel}`" in text

    missing = [rel for rel in modules if not named(rel)]
    assert not missing, f"{len(missing)} modules docs/architecture.md does not name:\n" + "\n".join(missing)
