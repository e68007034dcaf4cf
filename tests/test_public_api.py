"""The public surface is small and deliberate."""

from __future__ import annotations

import sceneforge
from sceneforge import errors


def test_all_is_exactly_this():
    assert sorted(sceneforge.__all__) == sorted([
        "AssetMissingError", "ConfigError", "Event", "GenerationError", "RetryPolicy", "Scene",
        "SceneValidationError", "SceneforgeError", "ServerUnavailableError", "Settings", "WorkflowCache",
        "WorkflowError", "audio_generator", "generate_all_audios", "generate_assets", "load_settings",
        "motion_generator", "visual_generator", "__version__",
    ])
    for name in sceneforge.__all__:
        assert getattr(sceneforge, name) is not None


def test_errors_inherit_the_seeds_builtins():
    assert issubclass(errors.SceneValidationError, ValueError)
    assert issubclass(errors.WorkflowError, ValueError)
    assert issubclass(errors.AssetMissingError, FileNotFoundError)
    assert issubclass(errors.ServerUnavailableError, RuntimeError)
    assert issubclass(errors.GenerationError, RuntimeError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SceneforgeError)


def test_cache_stage_names():
    assert (sceneforge.WorkflowCache.STAGE_AUDIO, sceneforge.WorkflowCache.STAGE_IMAGE,
            sceneforge.WorkflowCache.STAGE_MOTION) == ("audio", "image", "motion")


def test_public_code_has_docstrings():
    for name in sceneforge.__all__:
        obj = getattr(sceneforge, name)
        if callable(obj):
            assert obj.__doc__, name
