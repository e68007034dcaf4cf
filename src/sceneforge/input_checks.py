"""Checks on raw input values that plain type checks miss (used by scene validation).

* :func:`has_visible_text` — a text made only of invisible characters (zero-width
  spaces and joiners, BOMs, word joiners, soft hyphens, other format, control and
  space characters, lone combining marks, Hangul fillers) says nothing: it counts
  as empty, like whitespace.
* :func:`unicode_problem` — a lone surrogate (``"\\ud800"`` in JSON) is not text:
  it cannot be encoded to UTF-8, so it would fail the narration engine or the
  write of ``scenes.json`` after the work was done.
* :func:`json_problem` — a value that cannot be written back to ``scenes.json``:
  nested too deeply, an integer longer than Python converts to text (4300 digits
  by default), a lone surrogate in a string or a key. Walked without recursion,
  so a 100 000-deep value is reported, not a ``RecursionError``.
"""

from __future__ import annotations

import math
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_NESTING", "has_visible_text", "unicode_problem", "json_problem", "shown"]

#: Levels of arrays/objects allowed inside one field (scenes.json's writer allows ~250 in all).
MAX_NESTING = 100

# Categories that draw nothing on their own: controls, format (ZWSP, ZWJ, BOM, soft
# hyphen, word joiner, bidi marks, tags), separators, combining marks, surrogates.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Letters and symbols that render blank: Hangul fillers, the braille blank.
_BLANK_CHARS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(text: str) -> bool:
    """Whether ``text`` has at least one character that shows (stops at the first)."""
    return any(ch not in _BLANK_CHARS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def shown(text: str) -> str:
    """``text`` safe to print: lone surrogates as ``\\udXXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unicode_problem(text: str) -> str | None:
    """``"contains an unpaired surrogate \\udXXX"`` when ``text`` is not valid Unicode, else None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        return f"contains an unpaired surrogate \\u{ord(bad):04x} (not valid Unicode)"
    return None


def _int_problem(v: int) -> str | None:
    limit = sys.get_int_max_str_digits()
    # A number below 2**(3*limit) has fewer than `limit` digits: only huge ones need the exact check.
    if limit and v.bit_length() > 3 * limit and abs(v) >= 10**limit:
        return f"holds a number with more than {limit} digits"
    return None


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be written to ``scenes.json`` (a phrase to follow a field name), or None.

    Types JSON lacks (sets, dates, paths) are not judged here: the writer converts
    what it can, and the caller tries the real serialization for the rest.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            problem = unicode_problem(v)
        elif isinstance(v, float):
            # JSON has no NaN or Infinity: Python reads and writes them, but a strict reader (a browser,
            # jq, another language) refuses the file, and the written value would not be the one given.
            shown_as = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
            problem = None if math.isfinite(v) else f"is {shown_as}, which JSON cannot hold"
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            problem = _int_problem(v)
        elif isinstance(v, (Mapping, list, tuple, set, frozenset)):
            if depth >= MAX_NESTING:
                return f"is nested more than {MAX_NESTING} levels deep"
            if isinstance(v, Mapping):
                for k in v:
                    if isinstance(k, str) and (problem := unicode_problem(k)):
                        return f"has a key that {problem}"
                stack.extend((x, depth + 1) for x in v.values())
            else:
                stack.extend((x, depth + 1) for x in v)
            continue
        else:
            continue
        if problem:
            return problem
    return None
