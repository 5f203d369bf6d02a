"""Expiring counters for rate limits and PIN lockouts: in memory, or in Redis so every worker shares them."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis


class CountersFull(Exception):
    """The in-memory store has no room for a new key without dropping a live lockout."""


class CounterStore(Protocol):
    async def hit(self, key: str, window_s: int, *, lock_at: int | None = None) -> tuple[int, float]:
        """Increment `key`, starting a `window_s` window on first hit. Returns (count, seconds left).

        `lock_at`: the entry is a live lockout once its count reaches this value. A store that must make
        room never drops a live lockout; MemoryCounters raises CountersFull for a new key instead.
        """

    async def peek(self, key: str) -> tuple[int, float]:
        """Current (count, seconds left) without incrementing; (0, 0) when absent."""

    async def extend(self, key: str, seconds: int) -> None:
        """Make an existing counter live `seconds` from now."""

    async def clear(self, key: str) -> None: ...


@dataclass(frozen=True)
class _Entry:
    count: int
    until: float  # monotonic expiry
    lock_at: int  # 0: never a lockout

    @property
    def locking(self) -> bool:
        return self.lock_at > 0 and self.count >= self.lock_at


class MemoryCounters:
    """Per-process counters. Right for one worker; use Redis once there are several.

    Bounded at `max_keys`. To make room for a new key it drops expired entries, then the entries that
    are not live lockouts (closest to expiry first); it never drops a live lockout, so a flood of
    made-up e-mails cannot erase the lockout of a real one. When only live lockouts are left, a new key
    is refused with CountersFull (sign-in answers 503 `busy`) until the earliest of them expires.
    """

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[str, _Entry] = {}
        self._max_keys = max_keys
        self._clock = clock
        self._lock = asyncio.Lock()
        self._full_until = float("-inf")  # no room for new keys before then: every entry is a live lockout

    def __len__(self) -> int:
        return len(self._items)

    def _live(self, key: str, now: float) -> _Entry | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item.until <= now:
            del self._items[key]
            return None
        return item

    async def hit(self, key: str, window_s: int, *, lock_at: int | None = None) -> tuple[int, float]:
        now = self._clock()
        async with self._lock:
            item = self._live(key, now)
            if item is None:
                if len(self._items) >= self._max_keys:
                    self._make_room(now)
                item = _Entry(0, now + window_s, lock_at or 0)
            item = _Entry(item.count + 1, item.until, lock_at or item.lock_at)
            self._items[key] = item
        return item.count, item.until - now

    async def peek(self, key: str) -> tuple[int, float]:
        now = self._clock()
        item = self._live(key, now)
        return (0, 0.0) if item is None else (item.count, item.until - now)

    async def extend(self, key: str, seconds: int) -> None:
        item = self._items.get(key)
        if item is not None:
            self._items[key] = _Entry(item.count, self._clock() + seconds, item.lock_at)

    async def clear(self, key: str) -> None:
        self._items.pop(key, None)

    def _make_room(self, now: float) -> None:
        if now < self._full_until:
            # Nothing has expired since the last full scan, and entries only ever become lockouts.
            raise CountersFull()
        for key in [k for k, item in self._items.items() if item.until <= now]:
            del self._items[key]
        if len(self._items) < self._max_keys:
            return
        # Still full: forget the ordinary windows closest to expiry, which matter least. Never a lockout.
        evictable = sorted((item.until, key) for key, item in self._items.items() if not item.locking)
        for _, key in evictable[: max(1, self._max_keys // 10)]:
            del self._items[key]
        if len(self._items) < self._max_keys:
            return
        self._full_until = min(item.until for item in self._items.values())
        raise CountersFull()


class RedisCounters:
    """Counters shared by every worker and instance. INCR then EXPIRE NX in one round trip."""

    def __init__(self, client: aioredis.Redis, prefix: str = "vb:ctr:") -> None:
        self.client = client
        self.prefix = prefix

    async def hit(self, key: str, window_s: int, *, lock_at: int | None = None) -> tuple[int, float]:
        # Redis keeps every key until its TTL, unless its maxmemory policy evicts: run it with `noeviction`,
        # since every other policy may drop a live lockout. `lock_at` only matters to MemoryCounters.
        name = self.prefix + key
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_s, nx=True)
            pipe.pttl(name)
            count, _, pttl = await pipe.execute()
        return int(count), max(pttl, 0) / 1000.0

    async def peek(self, key: str) -> tuple[int, float]:
        name = self.prefix + key
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            value, pttl = await pipe.execute()
        if value is None:
            return 0, 0.0
        return int(value), max(pttl, 0) / 1000.0

    async def extend(self, key: str, seconds: int) -> None:
        await self.client.expire(self.prefix + key, seconds)

    async def clear(self, key: str) -> None:
        await self.client.delete(self.prefix + key)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
