"""PIN attempt lockout: after N failures a (user, source address) pair waits out a lockout window.

The counter is keyed by what the caller typed, not by whether that user exists, so a locked or
failed attempt looks the same for real and unknown users.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .counters import CounterStore


@dataclass(frozen=True)
class LockState:
    locked: bool
    retry_after: float


@dataclass(frozen=True)
class Attempt:
    """A reserved attempt: `locked` means it may not be tried; `last` means failing it locks the pair."""

    locked: bool
    retry_after: float
    last: bool


class PinLockout:
    def __init__(self, store: CounterStore, max_attempts: int, lockout_s: int) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s

    @staticmethod
    def _key(identifier: str, address: str) -> str:
        digest = hashlib.sha256(f"{identifier.strip().lower()}|{address}".encode()).hexdigest()[:32]
        return f"pin:{digest}"

    async def state(self, identifier: str, address: str) -> LockState:
        count, left = await self.store.peek(self._key(identifier, address))
        return LockState(count >= self.max_attempts, left if count >= self.max_attempts else 0.0)

    async def reserve(self, identifier: str, address: str) -> Attempt:
        """Count this attempt as failed up front (atomically), before the PIN is verified.

        Checking the state and counting only after a slow verification let a concurrent burst have every
        guess verified; counting first means at most `max_attempts` verifications per window.
        """
        key = self._key(identifier, address)
        count, left = await self.store.hit(key, self.lockout_s)
        if count > self.max_attempts:
            return Attempt(True, left, False)
        if count == self.max_attempts:
            # The lockout runs for its full length from the attempt that may trip it.
            await self.store.extend(key, self.lockout_s)
        return Attempt(False, 0.0, count == self.max_attempts)

    async def record_failure(self, identifier: str, address: str) -> LockState:
        key = self._key(identifier, address)
        count, _ = await self.store.hit(key, self.lockout_s)
        if count < self.max_attempts:
            return LockState(False, 0.0)
        # The lockout runs for its full length from the attempt that tripped it.
        await self.store.extend(key, self.lockout_s)
        return LockState(True, float(self.lockout_s))

    async def reset(self, identifier: str, address: str) -> None:
        await self.store.clear(self._key(identifier, address))
