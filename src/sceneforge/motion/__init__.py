"""Motion backends: ``wan`` (Wan2.2 image-to-video on ComfyUI) and ``kenburns`` (offline pan and zoom)."""

from .base import MotionBackend, MotionRequest, MotionResult, motion_registry

__all__ = ["MotionBackend", "MotionRequest", "MotionResult", "motion_registry"]
