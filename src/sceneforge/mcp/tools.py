"""The MCP server: sceneforge's tools and its scenes resource, on the SDK's :class:`MCPServer`.

Every tool is one call into :class:`.ops.ServiceOps` (the same library code the HTTP API
runs); a refused call is a tool error (``isError``) whose text lists every problem, one a
line, as the HTTP API's answer would. A tool that starts work answers at once with the
slug; ``wait_topic`` waits, sending progress notifications (done/total steps).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, ContentBlock, ImageContent, Resource, TextContent, ToolAnnotations
from pydantic import Field

from .. import __version__
from ..config import MAX_SEED
from ..doctor import DoctorReport
from .derive import scene_info, topic_info
from .ops import OpsError, SceneRead, ServiceOps
from .shapes import (
    Accepted,
    SceneInfo,
    TakeInfo,
    Takes,
    TopicInfo,
    TopicList,
    TopicSummary,
    VoiceInfo,
    VoiceList,
    WaitResult,
)
from .thumbs import pick_frames, thumbnail

__all__ = ["build_server", "SCENES_URI", "INSTRUCTIONS"]

SCENES_URI = "sceneforge://topics/{slug}/scenes.json"
INSTRUCTIONS = (
    "sceneforge makes narration, images and motion for planned video scenes. create_topic starts a topic "
    "and answers at once; wait_topic waits for its job (with progress); get_scene shows a scene with its "
    "image so you can judge it; regenerate re-rolls one asset (a new take, the old one kept); list_takes and "
    "restore_take go back to an earlier take; edit_scene changes a scene's text and remakes what it changed."
)
_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
Slug = Annotated[str, Field(description="The topic's folder name, as create_topic or list_topics answer it.")]
SceneN = Annotated[int, Field(ge=1, description="The scene's number, from 1.")]
Stage = Literal["audio", "image", "motion"]


def _fail(exc: OpsError) -> ToolError:
    lines = exc.lines
    if len(lines) == 1:
        return ToolError(lines[0])
    return ToolError(f"{len(lines)} problems:\n" + "\n".join(f"- {line}" for line in lines))


def _accepted(answer: dict[str, str], what: str) -> Accepted:
    return Accepted(slug=answer["slug"], status=answer["status"],
                    next=f"{what}; call wait_topic(slug={answer['slug']!r}) to wait for it")


class _Tools:
    """The tool functions, over one :class:`ServiceOps`."""

    def __init__(self, ops: ServiceOps) -> None:
        self.ops = ops

    def name(self, url: str) -> str | None:
        if not self.ops.local:
            return url
        path = self.ops.file_path(url)
        return str(path) if path is not None else None

    def topic(self, slug: str) -> TopicInfo:
        view = self.ops.topic_view(slug)
        return topic_info(view, stages=self.ops.stages(slug), name=self.name)

    def scene(self, read: SceneRead) -> tuple[SceneInfo, list[ContentBlock]]:
        """The scene as the tools show it, and its pictures (file checks, decoding: run it off the event loop)."""
        info = scene_info(read.scene, stages=read.stages, status=read.status, name=self.name)
        return info, _pictures(info.n, self.picture_files(info.n, read.scene.get("urls") or {}))

    def picture_files(self, n: int, urls: dict[str, Any]) -> list[tuple[str, Path]]:
        """The scene's image and a few of its motion frames, each with its label."""
        image = self.ops.file_path(urls["image"]) if isinstance(urls.get("image"), str) else None
        frames = [p for p in (self.ops.file_path(u) for u in urls.get("motion_frames") or [] if isinstance(u, str))
                  if p is not None]
        shown: list[tuple[str, Path]] = [(f"scene {n} image", image)] if image is not None else []
        return shown + [(f"scene {n} motion frame {frames.index(p) + 1} of {len(frames)}", p)
                        for p in pick_frames(frames)]


def _pictures(n: int, shown: list[tuple[str, Path]]) -> list[ContentBlock]:
    """Each file as image content after its label (decoding and scaling: run it off the event loop)."""
    blocks: list[ContentBlock] = []
    for label, path in shown:
        thumb = thumbnail(path)
        if thumb is None:
            blocks.append(TextContent(type="text", text=f"{label}: the file is not a readable image"))
            continue
        blocks.append(TextContent(type="text", text=f"{label} ({thumb.width}x{thumb.height}):"))
        blocks.append(ImageContent(type="image", data=base64.b64encode(thumb.data).decode("ascii"),
                                   mime_type=thumb.mime_type))
    if not shown or not shown[0][0].endswith(" image"):
        blocks.append(TextContent(type="text", text=f"scene {n} has no image yet"))
    return blocks


def _takes(tools: _Tools, slug: str, n: int, view: dict[str, Any]) -> Takes:
    out: dict[str, list[TakeInfo]] = {}
    for stage, takes in view.items():
        out[stage] = [TakeInfo(id=t["id"], seed=t["seed"], created_at=t["created_at"], current=t["current"],
                               files=[f for f in (tools.name(u) for u in t["urls"]) if f is not None])
                      for t in takes]
    return Takes(slug=slug, n=n, **out)


def _register_topic_tools(server: MCPServer[Any], t: _Tools) -> None:
    ops = t.ops

    @server.tool(annotations=_WRITE)
    async def create_topic(
        scenes: Annotated[list[dict[str, Any]], Field(description=(
            "The scenes, each an object with script (the narration) and image_prompt, optionally motion_prompt, "
            "voice, seed ..."))],
        topic: Annotated[str | None, Field(description="The topic's title (its folder name is made from it).")] = None,
        options: Annotated[dict[str, Any] | None, Field(description=(
            "Per-topic run settings: stages, motion, tts, voice, rate, workflow, motion_workflow, seed, width, "
            "height, offline ..."))] = None,
    ) -> Accepted:
        """Check the scenes (every problem at once; nothing is written when one is wrong), save them and queue
        the topic's run. Answers at once with the topic's slug; call wait_topic to wait for it."""
        try:
            return _accepted(await ops.submit(scenes, topic, options), "the topic's run is queued")
        except OpsError as exc:
            raise _fail(exc) from None

    @server.tool(annotations=_READ)
    def list_topics() -> TopicList:
        """Every topic, the most recently changed first, with its status and progress."""
        try:
            return TopicList(topics=[TopicSummary.model_validate(s) for s in ops.list_topics()])
        except OpsError as exc:
            raise _fail(exc) from None

    @server.tool(annotations=_READ)
    def get_topic(slug: Slug) -> TopicInfo:
        """The topic's status and progress, and per scene: its script and prompts, each stage's state (done,
        queued, running, failed, missing, off), why it failed, durations, seeds and its files."""
        try:
            return t.topic(slug)
        except OpsError as exc:
            raise _fail(exc) from None



def _register_job_tools(server: MCPServer[Any], t: _Tools) -> None:
    ops = t.ops

    @server.tool(annotations=_READ)
    async def wait_topic(
        slug: Slug, ctx: Context,
        timeout_s: Annotated[float, Field(ge=0, le=3600, description="Give up waiting after this long.")] = 600,
    ) -> WaitResult:
        """Wait until the topic's job ends or timeout_s passes (then finished is false: call it again), sending
        progress notifications (done/total steps) meanwhile."""
        async def progress(done: int, total: int) -> None:
            await ctx.report_progress(done, total or None, f"{done} of {total} steps" if total else "starting")

        try:
            state = await ops.wait(slug, timeout_s, progress)
        except OpsError as exc:
            raise _fail(exc) from None
        message = (f"the job ended: {state['status']}" if state["finished"]
                   else f"still {state['status']} after {timeout_s:g} s; call wait_topic again")
        return WaitResult.model_validate({**state, "message": message})

    @server.tool(annotations=_WRITE)
    async def cancel(slug: Slug) -> Accepted:
        """Cancel the topic's queued or running job (what it already made is kept)."""
        try:
            answer = await ops.cancel(slug)
        except OpsError as exc:
            raise _fail(exc) from None
        return Accepted(slug=answer["slug"], status=answer["status"], next="get_topic shows what was made")

    @server.tool(annotations=_WRITE)
    async def render_preview(slug: Slug) -> Accepted:
        """Render preview.mp4 and contact_sheet.png of the topic in the background (get_topic lists them)."""
        try:
            return _accepted(await ops.render(slug, "preview"), "the preview is queued")
        except OpsError as exc:
            raise _fail(exc) from None

    @server.tool(annotations=_WRITE)
    async def compose(slug: Slug) -> Accepted:
        """Render the publishable cut, final.mp4 (1080x1920, captions, crossfades, -14 LUFS) and cover.jpg, in
        the background; wait_topic, then get_topic lists them under previews."""
        try:
            return _accepted(await ops.render(slug, "compose"), "the final video is queued")
        except OpsError as exc:
            raise _fail(exc) from None


def _register_scene_tools(server: MCPServer[Any], t: _Tools) -> None:
    ops = t.ops

    @server.tool(annotations=_READ)
    async def get_scene(slug: Slug, n: SceneN) -> Annotated[CallToolResult, SceneInfo]:
        """One scene's fields and state, with its image as a picture (at most 768 px) and, when it has motion,
        three of its frames, so you can judge what was made."""
        try:
            info, pictures = await asyncio.to_thread(t.scene, await ops.scene(slug, n))
        except OpsError as exc:
            raise _fail(exc) from None
        data = info.model_dump(mode="json")
        text = TextContent(type="text", text=json.dumps(data, ensure_ascii=False))
        return CallToolResult(content=[text, *pictures], structured_content=data)

    @server.tool(annotations=_WRITE)
    async def edit_scene(
        slug: Slug, n: SceneN,
        changes: Annotated[dict[str, Any], Field(description=(
            "Scene fields to set (null removes one): script, image_prompt, motion_prompt, negative_prompt, voice, "
            "rate, seed, motion_seed ..."))],
    ) -> Accepted:
        """Change a scene and remake what the change invalidates (a script edit its narration, an image-prompt
        edit its image and then its motion)."""
        try:
            return _accepted(await ops.edit(slug, n, changes), f"scene {n} is saved and its remake queued")
        except OpsError as exc:
            raise _fail(exc) from None

    @server.tool(annotations=_WRITE)
    async def regenerate(
        slug: Slug, n: SceneN, stage: Stage,
        seed: Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Pin this seed; none: a new one.")] = None,
    ) -> Accepted:
        """A new take of the scene's audio, image or motion (an image's motion is remade with it); the current
        take is kept (list_takes, restore_take)."""
        try:
            return _accepted(await ops.regenerate(slug, n, stage, seed), f"scene {n}'s {stage} re-roll is queued")
        except OpsError as exc:
            raise _fail(exc) from None



def _register_take_tools(server: MCPServer[Any], t: _Tools) -> None:
    ops = t.ops

    @server.tool(annotations=_READ)
    async def list_takes(slug: Slug, n: SceneN) -> Takes:
        """Every take of the scene's assets per stage, oldest first; current marks the one in use."""
        try:
            return _takes(t, slug, n, await ops.takes(slug, n))
        except OpsError as exc:
            raise _fail(exc) from None

    @server.tool(annotations=_WRITE)
    async def restore_take(slug: Slug, n: SceneN, stage: Stage,
                           take_id: Annotated[str, Field(description="A take's id from list_takes.")]) -> Takes:
        """Make an earlier take current again (its files are put back; nothing is generated). Answers the
        scene's takes."""
        try:
            return _takes(t, slug, n, await ops.restore(slug, n, stage, take_id))
        except OpsError as exc:
            raise _fail(exc) from None


def _register_machine_tools(server: MCPServer[Any], t: _Tools) -> None:
    ops = t.ops

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def list_voices(
        engine: Annotated[str | None, Field(description="espeak, edge or openai; default: the service's.")] = None,
        language: Annotated[str | None, Field(description="Only this language, e.g. ko or en-US.")] = None,
    ) -> VoiceList:
        """The voices a narration engine offers (the value for a scene's or the options' voice)."""
        try:
            name, voices = await ops.voices(engine, language)
        except OpsError as exc:
            raise _fail(exc) from None
        return VoiceList(engine=name, language=language, voices=[VoiceInfo(**v.model_dump()) for v in voices])

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def doctor() -> DoctorReport:
        """The servers and engines the service uses: healthy or not, and why."""
        return await ops.doctor()

    @server.resource(SCENES_URI, name="scenes", mime_type="application/json",
                     description="A topic's scenes as the service shows them (scenes.json with each scene's n and URLs).")
    def scenes_resource(slug: str) -> str:
        try:
            return ops.scenes_json(slug).decode("utf-8")
        except OpsError as exc:
            raise ResourceError(exc.lines[0]) from None


Lifespan = Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]]


class _Server(MCPServer[Any]):
    """The SDK's server, whose resource list also names each topic's scenes (the template reads any)."""

    def __init__(self, ops: ServiceOps, **kw: Any) -> None:
        super().__init__(**kw)
        self._ops = ops

    async def list_resources(self) -> list[Resource]:
        listed = await asyncio.to_thread(self._ops.list_topics)  # a scan of --out: never on the loop
        topics = [Resource(uri=SCENES_URI.format(slug=quote(t["slug"], safe="")), name=f"{t['slug']}/scenes.json",
                           title=f"{t['topic']}: scenes", mime_type="application/json",
                           description=f"The scenes of topic {t['topic']!r} ({t['status']}).")
                  for t in listed]
        return [*await super().list_resources(), *topics]


def build_server(ops: ServiceOps, *, lifespan: Lifespan | None = None) -> MCPServer[Any]:
    """The MCP server over ``ops`` (``lifespan``: what brackets a stdio session, e.g. starting the service)."""
    server = _Server(ops, name="sceneforge", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING",
                     lifespan=lifespan)
    tools = _Tools(ops)
    _register_topic_tools(server, tools)
    _register_job_tools(server, tools)
    _register_scene_tools(server, tools)
    _register_take_tools(server, tools)
    _register_machine_tools(server, tools)
    return server

