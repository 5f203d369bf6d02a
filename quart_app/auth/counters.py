"""Expiring counters for rate limits and PIN lockouts: in memory, or in Redis so every worker shares them."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

import redis.asyncio as aioredis


class CounterStore(Protocol):
    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
        """Increment `key`, starting a `window_s` window on first hit. Returns (count, seconds left)."""

    async def peek(self, key: str) -> tuple[int, float]:
        """Current (count, seconds left) without incrementing; (0, 0) when absent."""

    async def extend(self, key: str, seconds: int) -> None:
        """Make an existing counter live `seconds` from now."""

    async def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Per-process counters. Right for one worker; use Redis once there are several."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._items: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys
        self._lock = asyncio.Lock()

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._items[key]
            return None
        return item

    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
        now = time.monotonic()
        async with self._lock:
            item = self._live(key, now)
            if item is None:
                if len(self._items) >= self._max_keys:
                    self._evict(now)
                item = (0, now + window_s)
            item = (item[0] + 1, item[1])
            self._items[key] = item
        return item[0], item[1] - now

    async def peek(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        item = self._live(key, now)
        return (0, 0.0) if item is None else (item[0], item[1] - now)

    async def extend(self, key: str, seconds: int) -> None:
        item = self._items.get(key)
        if item is not None:
            self._items[key] = (item[0], time.monotonic() + seconds)

    async def clear(self, key: str) -> None:
        self._items.pop(key, None)

    def _evict(self, now: float) -> None:
        expired = [k for k, (_, until) in self._items.items() if until <= now]
        for key in expired:
            del self._items[key]
        # Still full: forget the windows closest to expiry, which matter least.
        if len(self._items) >= self._max_keys:
            for key, _ in sorted(self._items.items(), key=lambda kv: kv[1][1])[: self._max_keys // 10]:
                del self._items[key]


class RedisCounters:
    """Counters shared by every worker and instance. INCR then EXPIRE NX in one round trip."""

    def __init__(self, client: aioredis.Redis, prefix: str = "vb:ctr:") -> None:
        self.client = client
        self.prefix = prefix

    async def hit(self, key: str, window_s: int) -> tuple[int, float]:
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
