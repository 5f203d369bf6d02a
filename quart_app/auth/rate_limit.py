"""Fixed-window request limits per API key or user."""

from __future__ import annotations

from dataclasses import dataclass

from .counters import CounterStore

WINDOW_S = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float


class RateLimiter:
    def __init__(self, store: CounterStore, per_minute: int) -> None:
        self.store = store
        self.per_minute = per_minute

    async def check(self, subject: str) -> RateDecision:
        count, left = await self.store.hit(f"rl:{subject}", WINDOW_S)
        remaining = max(0, self.per_minute - count)
        return RateDecision(count <= self.per_minute, self.per_minute, remaining, left)
