"""Fixed-window request limits: per API key and per user for the API, per address and account for PIN sign-in."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis import exceptions as redis_exceptions

from .counters import CountersFull, CounterStore
from .lockout import normalize_identifier

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
        self._last_warning = float("-inf")  # monotonic time of the last "counters unavailable" warning

    async def check(self, subject: str) -> RateDecision:
        return await self.check_all((subject,))

    async def check_all(self, subjects: Sequence[str]) -> RateDecision:
        """Count one request against every subject (e.g. its API key and its user): all must allow it.

        Each subject is counted even when another one refuses, so a key's and its user's counts agree.
        """
        decisions = []
        for subject in subjects:
            try:
                count, left = await self.store.hit(f"rl:{subject}", WINDOW_S)
            except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError, CountersFull) as exc:
                # Fail open: losing Redis (or a memory store full of live PIN lockouts) must not take the whole
                # API down; PIN sign-in, in contrast, fails closed.
                self._warn(exc)
                return RateDecision(True, self.per_minute, self.per_minute, 0.0)
            decisions.append(
                RateDecision(count <= self.per_minute, self.per_minute, max(0, self.per_minute - count), left)
            )
        refused = [d for d in decisions if not d.allowed]
        if refused:
            return max(refused, key=lambda d: d.retry_after)
        return min(decisions, key=lambda d: d.remaining)

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._last_warning > 30:
            self._last_warning = time.monotonic()
            reason = "in-memory counters are full of live lockouts" if isinstance(exc, CountersFull) else exc
            log.warning("rate limiting suspended, counters unavailable: %s", reason)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class SignInRateLimit:
    """Per-minute ceilings on PIN sign-in attempts from one client address and for one account.

    The account is what the caller typed (existing or not), so a refusal says nothing about whether it
    exists. Unlike API limits these fail closed: a Redis error or a full memory store propagates.
    """

    def __init__(self, store: CounterStore, per_address: int, per_account: int) -> None:
        self.store = store
        self.per_address = per_address
        self.per_account = per_account

    async def check(self, identifier: str, address: str) -> RateDecision:
        limits = (
            (f"rl:pin-address:{_digest(address)}", self.per_address),
            (f"rl:pin-account:{_digest(normalize_identifier(identifier))}", self.per_account),
        )
        remaining = self.per_address
        for key, limit in limits:
            # A refusing window is a live lockout to the memory store: a flood cannot evict it.
            count, left = await self.store.hit(key, WINDOW_S, lock_at=limit + 1)
            if count > limit:
                return RateDecision(False, limit, 0, left)
            remaining = min(remaining, limit - count)
        return RateDecision(True, min(self.per_address, self.per_account), remaining, 0.0)
