"""What the caller has actually heard, from Twilio's mark echoes and the call clock.

Every chunk of agent audio sent to Twilio is followed by a uniquely named `mark`; Twilio echoes a mark once
the audio queued before it has played (and at once, for every pending mark, after a `clear`). Positions are
8 kHz samples on one timeline of everything sent.

Between two echoes the position is interpolated on the call clock (the `timestamp` of Twilio's inbound media,
which advances 20 ms per frame in step with playback), never past the end of the first mark not yet echoed:
while marks are pending Twilio has audio queued and plays it continuously, so the interpolation is exact
whenever marks fall on frame boundaries and off by less than one chunk otherwise.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SAMPLES_PER_MS = 8


@dataclass(slots=True)
class Mark:
    name: str
    item_id: str | None  # None: a marker with no audio of its own (e.g. "hang up after this")
    end: int  # timeline position once everything before the mark has played
    item_start: int  # where the item's audio starts on the timeline


@dataclass(frozen=True, slots=True)
class Interrupted:
    """An item whose audio was cut by a `clear`: `heard_ms` of it reached the caller."""

    item_id: str
    heard_ms: int


class Playback:
    def __init__(self) -> None:
        self.queued = 0  # samples sent to Twilio (after a clear: the position playback stopped at)
        self.pending: deque[Mark] = deque()
        self._base_position = 0
        self._base_ms = 0
        self._item_id: str | None = None
        self._item_start = 0
        self._cleared: set[str] = set()
        self._counter = 0

    # ----- sending -------------------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def sent(self, item_id: str, samples: int, now_ms: int) -> str:
        """Record a chunk of `item_id` just sent; returns the name of the mark to send after it."""
        if not self.pending:  # Twilio's queue was empty: playback (re)starts with this chunk
            self._base_position, self._base_ms = self.queued, now_ms
        if item_id != self._item_id:
            self._item_id, self._item_start = item_id, self.queued
        self.queued += samples
        name = self._name("a")
        self.pending.append(Mark(name, item_id, self.queued, self._item_start))
        return name

    def marker(self, prefix: str = "m") -> str:
        """A mark with no audio: echoed once everything sent so far has played."""
        name = self._name(prefix)
        self.pending.append(Mark(name, None, self.queued, self.queued))
        return name

    # ----- Twilio's echoes --------------------------------------------------------------------------

    def echoed(self, name: str, now_ms: int) -> Mark | None:
        """Twilio echoed `name`. None for a mark dropped by a clear, or unknown. Echoes come in order."""
        if name in self._cleared:
            self._cleared.discard(name)
            return None
        if not any(m.name == name for m in self.pending):
            return None
        while self.pending:
            mark = self.pending.popleft()
            if mark.name == name:
                self._base_position, self._base_ms = mark.end, now_ms
                return mark
        return None  # pragma: no cover - the name was pending

    # ----- position ------------------------------------------------------------------------------------

    def heard(self, now_ms: int) -> int:
        """Timeline position the caller has heard up to."""
        if not self.pending:
            return self.queued
        estimate = self._base_position + max(0, now_ms - self._base_ms) * SAMPLES_PER_MS
        return min(max(estimate, self._base_position), self.pending[0].end)

    def playing(self, now_ms: int) -> bool:
        """Audio sent to Twilio that has not played yet."""
        return self.heard(now_ms) < self.queued

    @property
    def pending_marks(self) -> int:
        return len(self.pending)

    def clear(self, now_ms: int) -> tuple[list[Interrupted], list[str]]:
        """After sending `clear`: the items cut short (how much of each was heard), and the non-audio marks
        that were pending (their echoes, which Twilio sends at once, are ignored)."""
        position = self.heard(now_ms)
        cut: dict[str, int] = {}  # item -> samples heard
        markers: list[str] = []
        for mark in self.pending:
            self._cleared.add(mark.name)
            if mark.item_id is None:
                markers.append(mark.name)
            else:
                heard = max(0, min(position, mark.end) - mark.item_start)
                cut[mark.item_id] = max(cut.get(mark.item_id, 0), heard)
        self.pending.clear()
        self.queued = position
        self._base_position, self._base_ms = position, now_ms
        self._item_id = None
        return [Interrupted(item, samples // SAMPLES_PER_MS) for item, samples in cut.items()], markers
