"""The one timeline every part of the final cut is derived from.

Each scene gets a *slot*: its narration plus the pad, the slots laid end to
end with their boundaries on whole frames. Everything else follows from the slot
boundaries, so nothing can drift apart:

* the narration of scene *i* starts exactly at its slot's start and is cut (or
  padded with silence) to its slot, so two narrations never overlap and none is
  lost, whatever the transition;
* the crossfade between scene *i* and *i+1* is centred on their boundary: the
  picture of scene *i* is extended by half a transition past its slot and the
  next one starts half a transition early, so the video lasts the sum of the
  pictures' lengths minus the crossfades, which is the sum of the slots;
* a caption's time is its slot's start plus its time in the narration.

All times are whole frames; audio sample positions are frames times
``rate / fps`` (an integer for 48 kHz at every offered frame rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Clip", "Timeline", "plan_timeline"]


@dataclass(frozen=True)
class Clip:
    """Scene ``index``'s picture: output frames ``[first, end)``, of which ``[slot_first, slot_end)`` is its slot."""

    index: int
    first: int
    end: int
    slot_first: int
    slot_end: int

    @property
    def frames(self) -> int:
        return self.end - self.first


@dataclass(frozen=True)
class Timeline:
    """Slot boundaries (frames; ``bounds[0] == 0``, ``bounds[-1]`` the total) and the crossfade length."""

    fps: int
    bounds: tuple[int, ...]
    crossfade_frames: int

    @property
    def total_frames(self) -> int:
        return self.bounds[-1]

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps

    @property
    def scenes(self) -> int:
        return len(self.bounds) - 1

    def start(self, i: int) -> float:
        """Seconds at which scene ``i`` (0-based) and its narration start."""
        return self.bounds[i] / self.fps

    def end(self, i: int) -> float:
        """Seconds at which scene ``i``'s slot ends."""
        return self.bounds[i + 1] / self.fps

    def slot(self, i: int) -> float:
        return (self.bounds[i + 1] - self.bounds[i]) / self.fps

    def samples(self, i: int, rate: int) -> tuple[int, int]:
        """Scene ``i``'s slot in audio samples at ``rate``."""
        return self.bounds[i] * rate // self.fps, self.bounds[i + 1] * rate // self.fps

    def clips(self) -> list[Clip]:
        """Each scene's picture: its slot, plus half a crossfade before (after) every inner boundary."""
        before = self.crossfade_frames // 2
        after = self.crossfade_frames - before
        last = self.scenes - 1
        out = []
        for i in range(self.scenes):
            first = self.bounds[i] - (before if i > 0 else 0)
            end = self.bounds[i + 1] + (after if i < last else 0)
            out.append(Clip(i, first, end, self.bounds[i], self.bounds[i + 1]))
        return out

    def transition_offsets(self) -> list[float]:
        """Seconds (from the video's start) at which each crossfade begins: one per inner boundary."""
        before = self.crossfade_frames // 2
        return [(b - before) / self.fps for b in self.bounds[1:-1]]


def plan_timeline(narrations: list[float], *, fps: int, pad: float, crossfade: float) -> Timeline:
    """The timeline of scenes narrated for ``narrations`` seconds each.

    Slot boundaries are the running sums of ``narration + pad`` rounded to the
    nearest frame, so the total is within half a frame of the exact sum however
    many scenes there are; a slot is never shorter than its narration. The
    crossfade is shortened to the shortest slot, so a transition never reaches
    past the middle of a scene's neighbours.
    """
    if not narrations:
        raise ValueError("a timeline needs at least one scene")
    bounds, exact = [0], 0.0
    for d in narrations:
        exact += d + pad
        bounds.append(max(round(exact * fps), bounds[-1] + max(1, math.ceil(d * fps - 1e-6))))
    slots = [b - a for a, b in zip(bounds, bounds[1:])]
    x = round(crossfade * fps) if len(narrations) > 1 else 0
    x = min(x, min(slots))
    return Timeline(fps, tuple(bounds), max(0, x))
