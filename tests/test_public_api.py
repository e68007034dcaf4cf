"""The public surface is small and deliberate."""

from __future__ import annotations

import inspect

import sceneforge
from sceneforge import errors
from sceneforge.cache import StageCache, WorkflowCache

USE = ["generate_assets", "agenerate_assets", "plan_run", "run_many", "RunPlan", "Engine", "Settings",
       "load_settings", "Scene", "SceneFile", "Event", "EventKind", "EventSink", "JsonLinesSink", "RetryPolicy",
       "audio_generator", "visual_generator", "motion_generator", "aaudio_generator", "avisual_generator",
       "amotion_generator", "generate_all_audios"]
EXTEND = ["Backend", "BackendResources", "Reporter", "TTSBackend", "SpeechRequest", "SpeechResult",
          "ImageBackend", "ImageRequest", "ImageResult", "MotionBackend", "MotionRequest", "MotionResult",
          "tts_registry", "image_registry", "motion_registry"]
ERRORS = ["SceneforgeError", "SceneValidationError", "ConfigError", "AssetMissingError", "ServerUnavailableError",
          "WorkflowError", "GenerationError", "TopicConflictError", "UnsafePathError", "OutputLockedError",
          "JobInterruptedError", "PermanentError", "TransientError", "error_text"]


def test_all_is_exactly_this():
    assert sorted(sceneforge.__all__) == sorted([*USE, *EXTEND, *ERRORS, "__version__"])
    for name in sceneforge.__all__:
        assert getattr(sceneforge, name) is not None
    assert not {"StageCache", "WorkflowCache"} & set(sceneforge.__all__)  # internal: how the engine caches is not an API


def test_errors_inherit_the_original_systems_builtins():
    assert issubclass(errors.SceneValidationError, ValueError)
    assert issubclass(errors.WorkflowError, ValueError)
    assert issubclass(errors.AssetMissingError, FileNotFoundError)
    assert issubclass(errors.ServerUnavailableError, RuntimeError)
    assert issubclass(errors.GenerationError, RuntimeError)
    classes = [getattr(errors, n) for n in errors.__all__ if inspect.isclass(getattr(errors, n))]
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, errors.SceneforgeError)


def test_the_exception_tree_is_drawn_in_the_docstring():
    """Every class of the tree appears in the drawing, under its parent."""
    doc = errors.__doc__ or ""
    drawn = {line.split("── ")[1].split()[0]: line.index("── ") for line in doc.splitlines() if "── " in line}
    classes = {n: getattr(errors, n) for n in errors.__all__ if inspect.isclass(getattr(errors, n))}
    assert set(drawn) == set(classes) - {"SceneforgeError"}
    for name, cls in classes.items():
        if cls is errors.SceneforgeError:
            continue
        parent = next(b for b in cls.__mro__[1:] if b.__name__ in classes or b is errors.SceneforgeError)
        if parent is not errors.SceneforgeError and name in drawn:
            assert drawn[name] > drawn[parent.__name__], name  # indented under its parent


def test_cache_stage_names():
    """The original specification's names: ``WorkflowCache`` is ``StageCache`` (it caches audio too)."""
    assert WorkflowCache is StageCache
    assert (WorkflowCache.STAGE_AUDIO, WorkflowCache.STAGE_IMAGE, WorkflowCache.STAGE_MOTION) == (
        "audio", "image", "motion")


def test_public_code_has_docstrings():
    for name in sceneforge.__all__:
        obj = getattr(sceneforge, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name
