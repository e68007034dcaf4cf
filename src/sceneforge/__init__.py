"""sceneforge: turn planned short-form video scenes into narration, images and motion frames.

Use::

    from sceneforge import generate_assets, load_settings
    state = generate_assets({"topic": "demo", "scenes": [{"script": "...", "image_prompt": "..."}]},
                            load_settings({"offline": True}))

or, async and for several topics sharing one server pool: :func:`agenerate_assets`,
:func:`plan_run` (every check before any work) and :func:`run_many`; the original
system's node functions :func:`audio_generator`, :func:`visual_generator`,
:func:`motion_generator`.

Extend: subclass :class:`TTSBackend`, :class:`ImageBackend` or :class:`MotionBackend`
and declare it as an entry point (``sceneforge.tts``, ``sceneforge.image``,
``sceneforge.motion``), or register it with ``tts_registry.register("name")``.

Errors: everything raised on purpose is a :class:`SceneforgeError`, and also the
builtin the original system raised (``ValueError``, ``FileNotFoundError``,
``RuntimeError``).
"""

from .backend import Backend, BackendResources
from .config import Settings, load_settings
from .errors import (
    AssetMissingError,
    ConfigError,
    GenerationError,
    JobInterruptedError,
    OutputLockedError,
    PermanentError,
    SceneforgeError,
    SceneValidationError,
    ServerUnavailableError,
    TopicConflictError,
    TransientError,
    UnsafePathError,
    WorkflowError,
    error_text,
)
from .events import Event, EventKind, EventSink, JsonLinesSink, Reporter
from .images.base import ImageBackend, ImageRequest, ImageResult, image_registry
from .motion.base import MotionBackend, MotionRequest, MotionResult, motion_registry
from .pipeline import Engine, RunPlan, agenerate_assets, generate_assets, plan_run, run_many
from .pipeline.nodes import (
    aaudio_generator,
    amotion_generator,
    audio_generator,
    avisual_generator,
    generate_all_audios,
    motion_generator,
    visual_generator,
)
from .retry import RetryPolicy
from .scenes import Scene, SceneFile
from .tts.base import SpeechRequest, SpeechResult, TTSBackend, tts_registry

__version__ = "0.2.0"

__all__ = [
    # use
    "generate_assets",
    "agenerate_assets",
    "plan_run",
    "run_many",
    "RunPlan",
    "Engine",
    "Settings",
    "load_settings",
    "Scene",
    "SceneFile",
    "Event",
    "EventKind",
    "EventSink",
    "JsonLinesSink",
    "RetryPolicy",
    "audio_generator",
    "visual_generator",
    "motion_generator",
    "aaudio_generator",
    "avisual_generator",
    "amotion_generator",
    "generate_all_audios",
    # extend
    "Backend",
    "BackendResources",
    "Reporter",
    "TTSBackend",
    "SpeechRequest",
    "SpeechResult",
    "ImageBackend",
    "ImageRequest",
    "ImageResult",
    "MotionBackend",
    "MotionRequest",
    "MotionResult",
    "tts_registry",
    "image_registry",
    "motion_registry",
    # errors
    "SceneforgeError",
    "SceneValidationError",
    "ConfigError",
    "AssetMissingError",
    "ServerUnavailableError",
    "WorkflowError",
    "GenerationError",
    "TopicConflictError",
    "UnsafePathError",
    "OutputLockedError",
    "JobInterruptedError",
    "PermanentError",
    "TransientError",
    "error_text",
    "__version__",
]
