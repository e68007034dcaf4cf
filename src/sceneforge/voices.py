"""The voices a narration engine offers: :func:`list_voices`.

* ``espeak``: the languages of the bundled espeak-ng data (``espeakng-loader``), offline;
  a voice is a language code such as ``ko`` or ``en-us`` (variants: ``ko+f3``).
* ``edge``: Microsoft's voice list (``edge_tts.list_voices``), or the list of the host of
  ``edge_url`` when one is set (:func:`~sceneforge.tts.edge.fetch_voice_list`).
* ``openai``: the speech API's documented voices (every one speaks every language).

``language`` keeps the voices of one language: ``ko`` matches ``ko`` and ``ko-KR``,
``en-US`` matches ``en-us`` and ``en-US`` (case does not matter).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

from .config import Settings
from .errors import ConfigError

__all__ = ["Voice", "list_voices", "VOICE_ENGINES", "OPENAI_VOICES"]

#: The engines whose voices can be listed.
VOICE_ENGINES = ("espeak", "edge", "openai")
#: The voices of OpenAI's speech endpoint (https://platform.openai.com/docs/guides/text-to-speech).
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
_NAME_BYTES = 4096  # an espeak language file's head, where its "name" line is


class Voice(BaseModel):
    """One voice: the value for ``voice``, its language (None: any) and, when the engine says, its gender."""

    name: str
    language: str | None = None
    gender: str | None = None
    description: str | None = None


def _matches(language: str | None, wanted: str | None) -> bool:
    if wanted is None or language is None:
        return True
    have, want = language.lower(), wanted.strip().lower()
    return have == want or have.startswith(want + "-") or want.startswith(have + "-")


def _espeak_voices() -> list[Voice]:
    import espeakng_loader

    root = Path(espeakng_loader.get_data_path()) / "lang"
    voices = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = None
        try:
            with path.open("rb") as fh:
                head = fh.read(_NAME_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
        for line in head.splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "name":
                name = value.strip() or None
                break
        code = path.name.lower()
        voices.append(Voice(name=code, language=code, description=name))
    return sorted(voices, key=lambda v: v.name)


async def _edge_voices(settings: Settings) -> list[Voice]:
    from .tts.edge import fetch_voice_list

    raw = await fetch_voice_list(settings.edge_url, min(10.0, settings.tts_timeout))
    return [Voice(name=str(v["ShortName"]), language=str(v["Locale"]) if isinstance(v.get("Locale"), str) else None,
                  gender=str(v["Gender"]) if isinstance(v.get("Gender"), str) else None,
                  description=str(v["FriendlyName"]) if isinstance(v.get("FriendlyName"), str) else None)
            for v in raw]


async def list_voices(engine: str, language: str | None = None, *, settings: Settings | None = None) -> list[Voice]:
    """The voices of ``engine`` (one of :data:`VOICE_ENGINES`), of ``language`` when given.

    ``settings`` gives edge's endpoint override and time limit. A ConfigError names an
    unknown engine; a ServerUnavailableError says why edge's list could not be had.
    """
    settings = settings or Settings()
    if engine == "espeak":
        voices = await asyncio.to_thread(_espeak_voices)
    elif engine == "edge":
        voices = await _edge_voices(settings)
    elif engine == "openai":
        voices = [Voice(name=v) for v in OPENAI_VOICES]
    else:
        raise ConfigError(f"engine: cannot list the voices of {engine!r}; choose from {', '.join(VOICE_ENGINES)}")
    return [v for v in voices if _matches(v.language, language)]
