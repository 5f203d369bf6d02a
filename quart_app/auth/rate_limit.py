"""Fixed-window request limits per API key or user."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis import exceptions as redis_exceptions

from .counters import CounterStore

log = logging.getLogger(__name__)

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
        self._last_warning = float("-inf")  # monotonic time of the last "Redis unreachable" warning

    async def check(self, subject: str) -> RateDecision:
        try:
            count, left = await self.store.hit(f"rl:{subject}", WINDOW_S)
        except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError) as exc:
            # Fail open: losing Redis must not take the whole API down; PIN lockouts, in contrast, fail closed.
            if time.monotonic() - self._last_warning > 30:
                self._last_warning = time.monotonic()
                log.warning("rate limiting suspended, Redis unreachable: %s", exc)
            return RateDecision(True, self.per_minute, self.per_minute, 0.0)
        remaining = max(0, self.per_minute - count)
        return RateDecision(count <= self.per_minute, self.per_minute, remaining, left)
