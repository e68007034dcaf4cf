"""Image backends: ``comfyui`` (a text-to-image workflow on ComfyUI) and ``storyboard`` (offline draft cards)."""

from .base import ImageBackend, ImageResult, image_registry

__all__ = ["ImageBackend", "ImageResult", "image_registry"]
