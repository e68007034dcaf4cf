"""Play the agent: make a topic through sceneforge's MCP tools, look at every scene, re-roll what a rule rejects.

The rule (what a multimodal model would judge by eye, made mechanical here): a scene is
rejected when it has no image, or when its image's mean brightness (0-255, of the
thumbnail get_scene sends) is below ``--min-brightness``. A rejected scene's image is
re-rolled with a new seed, up to ``--rounds`` times; a scene still rejected then gets back
the take the rule liked best (list_takes, restore_take). The script prints what it saw and did.

It talks to ``sceneforge mcp`` over stdio with the official MCP SDK's client, exactly as a
desktop agent would::

    python examples/agent_loop.py --offline --out output-agent
    python examples/agent_loop.py examples/coffee.en.json --min-brightness 60 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_types import CallToolResult, ImageContent
from PIL import Image, ImageStat

HERE = Path(__file__).resolve().parent


def brightness(result: CallToolResult) -> float | None:
    """The mean brightness of the scene's image (the first picture get_scene sends), None without one."""
    for block in result.content:
        if isinstance(block, ImageContent):
            with Image.open(io.BytesIO(base64.b64decode(block.data))) as im:
                return float(ImageStat.Stat(im.convert("L")).mean[0])
    return None


def verdict(level: float | None, minimum: float) -> str | None:
    """Why the rule rejects a scene (None: it passes)."""
    if level is None:
        return "it has no image"
    if level < minimum:
        return f"its image is too dark ({level:.1f} < {minimum:g})"
    return None


async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, args)
    if result.is_error:
        raise SystemExit(f"{tool} failed: {' '.join(getattr(c, 'text', '') for c in result.content)}")
    return result.structured_content or {}


async def wait(session: ClientSession, slug: str) -> str:
    async def progress(done: float, total: float | None, message: str | None) -> None:
        print(f"  ... {message or done}", flush=True)

    result = await session.call_tool("wait_topic", {"slug": slug, "timeout_s": 600}, progress_callback=progress)
    state = result.structured_content or {}
    return str(state.get("status"))


async def judge(session: ClientSession, slug: str, n: int, minimum: float) -> str | None:
    result = await session.call_tool("get_scene", {"slug": slug, "n": n})
    level = brightness(result)
    reason = verdict(level, minimum)
    seen = "no image" if level is None else f"brightness {level:.1f}"
    print(f"scene {n}: {seen} -> {'rejected: ' + reason if reason else 'kept'}", flush=True)
    return reason


def file_brightness(path: str) -> float:
    with Image.open(path) as im:
        return float(ImageStat.Stat(im.convert("L")).mean[0])


async def keep_best(session: ClientSession, slug: str, n: int) -> None:
    """Make the brightest of the scene's image takes current (over stdio a take's files are local paths)."""
    takes = (await call(session, "list_takes", slug=slug, n=n))["image"]
    best = max(takes, key=lambda t: file_brightness(t["files"][0]))
    if best["current"]:
        print(f"scene {n}: the current take is the best one; kept", flush=True)
        return
    await call(session, "restore_take", slug=slug, n=n, stage="image", take_id=best["id"])
    print(f"scene {n}: restored take {best['id']} (seed {best['seed']}), the brightest of {len(takes)}", flush=True)


async def agent(args: argparse.Namespace) -> int:
    scenes = json.loads(Path(args.scenes).read_text(encoding="utf-8"))
    command = [sys.executable, "-m", "sceneforge", "mcp", "--out", str(args.out), *(["--offline"] if args.offline else [])]
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        topic = await call(session, "create_topic", topic=scenes.get("topic"),
                           scenes=[{k: v for k, v in s.items() if not k.endswith("_path")} for s in scenes["scenes"]])
        slug = topic["slug"]
        print(f"created topic {slug}; waiting for it", flush=True)
        print(f"topic {slug}: {await wait(session, slug)}", flush=True)
        count = len((await call(session, "get_topic", slug=slug))["scenes"])
        rejected = [n for n in range(1, count + 1) if await judge(session, slug, n, args.min_brightness)]
        for round_ in range(1, args.rounds + 1):
            if not rejected:
                break
            for n in rejected:
                seed = args.seed + 1000 * round_ + n
                await call(session, "regenerate", slug=slug, n=n, stage="image", seed=seed)
                print(f"re-rolled scene {n}'s image with seed {seed}; waiting", flush=True)
                print(f"scene {n}: {await wait(session, slug)}", flush=True)
            rejected = [n for n in rejected if await judge(session, slug, n, args.min_brightness)]
        for n in rejected:
            await keep_best(session, slug, n)
        print(f"done: {count - len(rejected)} of {count} scenes pass the rule"
              + (f"; still rejected: {', '.join(map(str, rejected))}" if rejected else ""), flush=True)
    return 0 if not rejected else 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenes", nargs="?", default=str(HERE / "ai-shorts.ko.json"), help="A scene file.")
    parser.add_argument("--out", type=Path, default=Path("output-agent"), help="sceneforge's output folder.")
    parser.add_argument("--offline", action="store_true", help="Offline backends: espeak, storyboard, kenburns.")
    parser.add_argument("--min-brightness", type=float, default=40.0, help="Reject darker images (0-255).")
    parser.add_argument("--rounds", type=int, default=2, help="Re-rolls a rejected scene gets at most.")
    parser.add_argument("--seed", type=int, default=7, help="Re-roll seeds are made from it.")
    return asyncio.run(agent(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
