"""Image backends: ``comfyui`` (a text-to-image workflow on ComfyUI) and ``storyboard`` (offline draft cards)."""

from .base import ImageBackend, ImageRequest, ImageResult, image_registry

__all__ = ["ImageBackend", "ImageRequest", "ImageResult", "image_registry"]
