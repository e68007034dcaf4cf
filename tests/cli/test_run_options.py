"""One set of run options for every face that runs topics (``run``, ``serve``, ``mcp``).

The faces are compared by their click parameters (what ``--help`` shows and the parser accepts), not
by their source: a run option missing from a face, or a flag added to ``run`` that is neither a run
option nor one of run's per-invocation flags, fails here with its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sceneforge.cli import app
from sceneforge.cli.options import RUN_OPTION_NAMES, RunOptions, with_run_options
from sceneforge.config import Settings

#: The commands that run topics (a new one goes here, and takes :func:`with_run_options`).
FACES = ("run", "serve", "mcp")
#: Flags of one invocation of ``run``: not run options.
PER_INVOCATION = {"files", "topic", "scene", "force", "json_out", "events", "preview", "compose", "wait_lock"}


def commands() -> dict[str, Any]:
    """The app's commands as click builds them (typer's group; its own click, not ``click.Group``)."""
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def command_params(name: str) -> dict[str, Any]:
    return {p.name: p for p in commands()[name].params if p.name}


def faces() -> list[str]:
    found = [name for name in FACES if name in commands()]
    assert found == list(FACES), f"the app has no {sorted(set(FACES) - set(found))} command"
    return found


def run_option_flags() -> dict[str, tuple[list[str], list[str]]]:
    """Each run option's flags as ``run`` declares them: the reference every face must match."""
    params = command_params("run")
    return {name: (params[name].opts, params[name].secondary_opts) for name in RUN_OPTION_NAMES}


def test_the_run_options_are_the_fields_of_runoptions() -> None:
    assert {"seed", "motion_seed", "reference_node", "motion_prompt_node", "motion_image_node", "out",
            "comfy_url", "config"} <= set(RUN_OPTION_NAMES)
    assert not PER_INVOCATION & set(RUN_OPTION_NAMES)


@pytest.mark.parametrize("face", faces())
def test_every_face_takes_every_run_option(face: str) -> None:
    params = command_params(face)
    missing = [name for name in RUN_OPTION_NAMES if name not in params]
    assert not missing, f"sceneforge {face} lacks the run options {missing} (use cli.options.with_run_options)"
    flags = run_option_flags()
    differ = [name for name in RUN_OPTION_NAMES if (params[name].opts, params[name].secondary_opts) != flags[name]]
    assert not differ, f"sceneforge {face} spells these run options differently from run: {differ}"


def test_run_has_nothing_but_run_options_and_its_own_flags() -> None:
    extra = set(command_params("run")) - set(RUN_OPTION_NAMES) - PER_INVOCATION
    assert not extra, f"run has flags that are neither run options nor per-invocation: {sorted(extra)}"


def test_serve_takes_the_run_options_as_every_topics_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sceneforge.service.server as server

    seen: list[Settings] = []
    monkeypatch.setattr(server, "serve", lambda settings, **kw: seen.append(settings))
    result = CliRunner().invoke(app, [
        "serve", "--out", str(tmp_path), "--port", "0", "--seed", "5", "--motion-seed", "7",
        "--reference-node", "face", "--motion-prompt-node", "mp", "--motion-image-node", "mi",
        "--comfy-url", "http://127.0.0.1:1", "--comfy-url", "http://127.0.0.1:2", "--sequential", "--no-motion",
    ])
    assert result.exit_code == 0, result.output
    [s] = seen
    assert (s.seed, s.motion_seed, s.reference_node, s.motion_prompt_node, s.motion_image_node) == (
        5, 7, "face", "mp", "mi")
    assert s.out_dir == tmp_path and s.serve_port == 0 and s.sequential and not s.motion_enabled
    assert s.comfy_urls == ("http://127.0.0.1:1", "http://127.0.0.1:2")


def test_mcp_takes_the_run_options_as_every_topics_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sceneforge.mcp.stdio as stdio

    seen: list[Settings] = []
    monkeypatch.setattr(stdio, "run_stdio", lambda settings: seen.append(settings))
    result = CliRunner().invoke(app, ["mcp", "--out", str(tmp_path), "--offline", "--concurrency", "3",
                                      "--seed", "11", "--motion-image-node", "mi"])
    assert result.exit_code == 0, result.output
    [s] = seen
    assert (s.out_dir, s.offline, s.serve_concurrency, s.seed, s.motion_image_node) == (tmp_path, True, 3, 11, "mi")


def test_runoptions_maps_only_what_was_given() -> None:
    assert RunOptions().overrides() == {}
    given = RunOptions(offline=True, comfy_url=["http://h:1"], motion=False, seed=3).overrides()
    assert given == {"offline": True, "comfy_urls": ("http://h:1",), "motion_enabled": False, "seed": 3}


def test_with_run_options_refuses_a_face_declaring_a_run_option_itself() -> None:
    def face(seed: int = 0, *, options: RunOptions) -> None: ...

    def no_options(x: int = 0) -> None: ...

    with pytest.raises(TypeError, match="seed"):
        with_run_options(face)
    with pytest.raises(TypeError, match="options"):
        with_run_options(no_options)


def test_a_face_gets_its_own_flags_and_the_options_object() -> None:
    got: list[Any] = []

    @with_run_options
    def face(name: str = "x", *, options: RunOptions) -> None:
        """A face."""
        got.append((name, options))

    small = typer.Typer()
    small.command()(face)
    result = CliRunner().invoke(small, ["--name", "y", "--tts", "espeak", "--motion-seed", "9"])
    assert result.exit_code == 0, result.output
    [(name, options)] = got
    assert name == "y" and options.tts == "espeak" and options.motion_seed == 9 and options.seed is None
