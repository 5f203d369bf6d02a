"""PIN attempt lockout, per (account, source address) pair and per account across all addresses.

A pair gets `max_attempts` tries per lockout window; an account gets `account_max_attempts` tries per
window from every address together, so an attacker with many addresses cannot multiply the budget.
The counters are keyed by what the caller typed, not by whether that user exists, so a locked or
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


def normalize_identifier(identifier: str) -> str:
    return identifier.strip().lower()


class PinLockout:
    def __init__(self, store: CounterStore, max_attempts: int, lockout_s: int, account_max_attempts: int = 20) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s
        self.account_max_attempts = account_max_attempts

    @staticmethod
    def _key(identifier: str, address: str) -> str:
        digest = hashlib.sha256(f"{normalize_identifier(identifier)}|{address}".encode()).hexdigest()[:32]
        return f"pin:{digest}"

    @staticmethod
    def _account_key(identifier: str) -> str:
        digest = hashlib.sha256(normalize_identifier(identifier).encode()).hexdigest()[:32]
        return f"pin-account:{digest}"

    async def state(self, identifier: str, address: str) -> LockState:
        count, left = await self.store.peek(self._key(identifier, address))
        return LockState(count >= self.max_attempts, left if count >= self.max_attempts else 0.0)

    async def reserve(self, identifier: str, address: str) -> Attempt:
        """Count this attempt as failed up front (atomically), before the PIN is verified.

        Checking the state and counting only after a slow verification let a concurrent burst have every
        guess verified; counting first means at most `max_attempts` verifications per pair and window, and
        at most `account_max_attempts` per account and window whatever the number of addresses.
        """
        pair = await self._reserve(self._key(identifier, address), self.max_attempts)
        if pair.locked:
            return pair
        account = await self._reserve(self._account_key(identifier), self.account_max_attempts)
        if account.locked:
            return account
        return Attempt(False, 0.0, pair.last or account.last)

    async def _reserve(self, key: str, limit: int) -> Attempt:
        count, left = await self.store.hit(key, self.lockout_s, lock_at=limit)
        if count > limit:
            return Attempt(True, left, False)
        if count == limit:
            # The lockout runs for its full length from the attempt that may trip it.
            await self.store.extend(key, self.lockout_s)
        return Attempt(False, 0.0, count == limit)

    async def reset(self, identifier: str, address: str) -> None:
        """After a success: the pair starts over. The account count stays (it bounds guesses per window)."""
        await self.store.clear(self._key(identifier, address))
