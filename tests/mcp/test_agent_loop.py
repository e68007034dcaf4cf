"""examples/agent_loop.py, run offline as a user would: it drives ``sceneforge mcp`` over stdio."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path

from mcp_helpers import EXAMPLE, ROOT

SCRIPT = ROOT / "examples" / "agent_loop.py"


def _module():
    spec = importlib.util.spec_from_file_location("agent_loop", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rule() -> None:
    loop = _module()
    assert loop.verdict(None, 40) == "it has no image"
    assert loop.verdict(39.5, 40) == "its image is too dark (39.5 < 40)"
    assert loop.verdict(40.0, 40) is None


async def test_the_agent_rerolls_every_scene_its_rule_rejects(tmp_path: Path) -> None:
    """A rule no image passes (brightness 256): every scene is re-rolled once with its own seed, the best
    take is kept, and the script says so."""
    scenes = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    scenes["scenes"] = scenes["scenes"][:3]
    (tmp_path / "three.json").write_text(json.dumps(scenes, ensure_ascii=False), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), str(tmp_path / "three.json"), "--offline", "--out", str(tmp_path / "out"),
        "--min-brightness", "256",
        "--rounds", "1", cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    out = stdout.decode()
    assert proc.returncode == 3, out + stderr.decode()
    assert "Traceback" not in out + stderr.decode()
    assert re.search(r"^topic (\S+): done$", out, re.M)
    for n in range(1, 4):
        assert re.search(rf"^scene {n}: brightness [\d.]+ -> rejected: its image is too dark", out, re.M)
        assert f"re-rolled scene {n}'s image with seed {1007 + n}; waiting" in out
        assert re.search(rf"^scene {n}: (restored take \S+ \(seed \d+\), the brightest of 2|the current take is "
                         rf"the best one; kept)$", out, re.M)
    assert out.rstrip().endswith("done: 0 of 3 scenes pass the rule; still rejected: 1, 2, 3")
    (topic,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    for n in range(1, 4):
        kept = [p for p in (topic / ".sceneforge" / "takes" / "image" / f"scene_{n}").iterdir() if p.is_dir()]
        assert len(kept) == 1  # the take not in use, kept; the other is image_scene_N.png
        assert (topic / f"image_scene_{n}.png").is_file()
