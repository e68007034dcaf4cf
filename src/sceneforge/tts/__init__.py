"""Narration backends: ``espeak`` (offline), ``edge`` (edge-tts), ``openai`` (OpenAI-compatible speech)."""

from .base import Cue, SpeechRequest, SpeechResult, TTSBackend, TTSOptions, tts_registry

__all__ = ["Cue", "SpeechRequest", "SpeechResult", "TTSBackend", "TTSOptions", "tts_registry"]
