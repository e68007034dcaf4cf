"""The engine: plan a run, then run every scene's chain (narration ∥ image → motion).

* :mod:`.plan` - :func:`plan_run`: every check that can be made before any work.
* :mod:`.engine` - :class:`Engine`: shared resources and backends; one topic's run.
* :mod:`.schedule` - the one scheduler (per-scene chains; the original order as barriers).
* :mod:`.steps` - one scene's work in one stage: cache, retry, record.
* :mod:`.context` - what the steps of one topic run share.
* :mod:`.api` - ``generate_assets``, ``agenerate_assets``, ``run_many``.
* :mod:`.nodes` - the original system's node functions (``audio_generator`` ...).
"""

from .api import TopicResult, agenerate_assets, generate_assets, run_many
from .engine import Engine, write_scenes_json
from .plan import DEFAULT_TOPIC, RunPlan, aplan_run, plan_run

__all__ = [
    "DEFAULT_TOPIC",
    "Engine",
    "RunPlan",
    "TopicResult",
    "agenerate_assets",
    "aplan_run",
    "generate_assets",
    "plan_run",
    "run_many",
    "write_scenes_json",
]
