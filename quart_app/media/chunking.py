"""Planning where to cut long audio so each piece fits a provider's upload limit, at pauses when possible."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from .extract import Silence

# Bytes of every chunk that are not audio packets (FLAC header, seek table) plus multipart form overhead.
CHUNK_OVERHEAD_BYTES = 16 * 1024
# Never plan a chunk shorter than this unless the audio itself is that short.
MIN_CHUNK_S = 1.0


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


class ByteTimeline:
    """Cumulative audio bytes along the timeline, from (time, size) packets in time order."""

    def __init__(self, packets: Sequence[tuple[float, int]]) -> None:
        self.times = [t for t, _ in packets]
        self.cumulative = [0]
        for _, size in packets:
            self.cumulative.append(self.cumulative[-1] + size)

    def bytes_before(self, t: float) -> int:
        """Bytes of the packets that start before `t`."""
        return self.cumulative[bisect.bisect_left(self.times, t)]

    def between(self, start: float, end: float) -> int:
        return self.bytes_before(end) - self.bytes_before(start)

    def furthest_end(self, start: float, budget: int) -> float:
        """The latest packet boundary `t` with between(start, t) <= budget (at least one packet past start)."""
        first = bisect.bisect_left(self.times, start)
        limit = self.cumulative[first] + budget
        # The packet at index i ends where packet i+1 starts; cumulative[i+1] counts it in.
        last = bisect.bisect_right(self.cumulative, limit) - 1  # packets [first, last) fit
        last = max(last, first + 1)
        return self.times[last] if last < len(self.times) else float("inf")


def plan_chunks(
    duration: float,
    silences: Sequence[Silence],
    packets: Sequence[tuple[float, int]],
    max_bytes: int,
    *,
    overhead: int = CHUNK_OVERHEAD_BYTES,
    min_chunk_s: float = MIN_CHUNK_S,
    max_chunk_s: float | None = None,
) -> list[Chunk]:
    """Consecutive chunks covering [0, duration], each's audio bytes under `max_bytes - overhead` and, with
    `max_chunk_s`, each at most that long.

    Each chunk ends in the middle of the last pause that still fits; a stretch with no pause is cut hard
    at the furthest point that fits.
    """
    budget = max_bytes - overhead
    if budget <= 0:
        raise ValueError(f"limit of {max_bytes} bytes leaves no room for audio")
    timeline = ByteTimeline(packets)
    middles = sorted(s.middle for s in silences)
    chunks: list[Chunk] = []
    start = 0.0
    longest = float("inf") if max_chunk_s is None else max(max_chunk_s, min_chunk_s)
    while duration - start > 1e-6:
        if timeline.between(start, float("inf")) <= budget and duration - start <= longest:
            end = duration
        else:
            fits = min(timeline.furthest_end(start, budget), duration, start + longest)
            lo = bisect.bisect_right(middles, start + min_chunk_s)
            hi = bisect.bisect_right(middles, fits)
            end = middles[hi - 1] if hi > lo else fits
            if end <= start:  # a single packet over budget: nothing better than moving on
                end = min(duration, start + min_chunk_s)
        chunks.append(Chunk(len(chunks), round(start, 3), round(end, 3)))
        start = end
    return chunks
