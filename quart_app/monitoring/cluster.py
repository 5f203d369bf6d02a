"""Each instance's figures in Redis, so any instance can show the whole cluster.

    reports = ClusterReports(redis, instance_id)
    await reports.publish(report, period_s)     # SET <prefix>:report:<id> with a TTL of two periods
    await reports.read()                         # every live instance's latest report
    await reports.withdraw()                     # on shutdown: gone at once rather than at expiry
    await reports.request_interval(2.0)          # a dashboard somewhere wants updates every 2 s
    await reports.requested_interval()           # the smallest interval still asked for, or None

An instance that stops reporting (killed, partitioned) disappears when its report expires: within two of
its periods. The index set only saves a SCAN; a member whose report has expired is dropped when read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

PREFIX = "voice-backend:monitoring"
DEMAND_TTL_PERIODS = 3  # a request for fast reports lapses three intervals after its dashboard stops asking

# Keep the smallest interval asked for: a larger one never overwrites a smaller one that is still refreshed.
_REQUEST_INTERVAL = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class ClusterReports:
    def __init__(self, redis: aioredis.Redis, instance_id: str, prefix: str = PREFIX) -> None:
        self.redis = redis
        self.instance_id = instance_id
        self.prefix = prefix
        self._request = redis.register_script(_REQUEST_INTERVAL)

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:instances"

    @property
    def demand_key(self) -> str:
        return f"{self.prefix}:demand"

    def report_key(self, instance_id: str) -> str:
        return f"{self.prefix}:report:{instance_id}"

    async def publish(self, report: dict[str, Any], period_s: float) -> None:
        ttl_ms = max(1, int(round(2 * period_s * 1000)))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.report_key(self.instance_id), json.dumps(report, separators=(",", ":")), px=ttl_ms)
            pipe.sadd(self.index_key, self.instance_id)
            await pipe.execute()

    async def withdraw(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.report_key(self.instance_id))
            pipe.srem(self.index_key, self.instance_id)
            await pipe.execute()

    async def read(self) -> list[dict[str, Any]]:
        members = sorted(_text(m) for m in await self.redis.smembers(self.index_key))
        if not members:
            return []
        values = await self.redis.mget([self.report_key(m) for m in members])
        reports: list[dict[str, Any]] = []
        gone: list[str] = []
        for member, value in zip(members, values, strict=True):
            if value is None:
                gone.append(member)
                continue
            try:
                report = json.loads(value)
            except ValueError:
                log.warning("unreadable monitoring report from %s", member)
                continue
            if isinstance(report, dict):
                reports.append(report)
        if gone:
            await self.redis.srem(self.index_key, *gone)
        return reports

    async def request_interval(self, interval_s: float) -> None:
        ttl_ms = int(round(DEMAND_TTL_PERIODS * interval_s * 1000))
        await self._request(keys=[self.demand_key], args=[repr(float(interval_s)), ttl_ms])

    async def requested_interval(self) -> float | None:
        value = await self.redis.get(self.demand_key)
        if value is None:
            return None
        try:
            return float(_text(value))
        except ValueError:
            return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
