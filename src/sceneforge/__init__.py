"""sceneforge: turn planned short-form video scenes into narration, images and motion frames.

The public surface is small on purpose::

    from sceneforge import generate_assets
    state = generate_assets({"topic": "demo", "scenes": [{"script": "...", "image_prompt": "..."}]})
"""

from .cache import WorkflowCache
from .config import Settings, load_settings
from .errors import (
    AssetMissingError,
    ConfigError,
    GenerationError,
    SceneforgeError,
    SceneValidationError,
    ServerUnavailableError,
    WorkflowError,
)
from .events import Event
from .nodes import (
    audio_generator,
    generate_all_audios,
    motion_generator,
    visual_generator,
)
from .pipeline import generate_assets
from .retry import RetryPolicy
from .scenes import Scene

__version__ = "0.1.0"

__all__ = [
    "AssetMissingError",
    "ConfigError",
    "Event",
    "GenerationError",
    "RetryPolicy",
    "Scene",
    "SceneValidationError",
    "SceneforgeError",
    "ServerUnavailableError",
    "Settings",
    "WorkflowCache",
    "WorkflowError",
    "audio_generator",
    "generate_all_audios",
    "generate_assets",
    "load_settings",
    "motion_generator",
    "visual_generator",
    "__version__",
]
