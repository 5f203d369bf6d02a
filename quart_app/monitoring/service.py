"""The running side of monitoring: this instance's report, the Redis publisher, and the one update emitter.

    service = MonitoringService(monitoring, settings, database, redis, uptime_s=..., draining=..., send=...)
    await service.start()                       # loop-lag sampler; publisher when Redis is configured
    service.subscribe(sid, interval_s=2)        # first update at once, then every 2 s
    service.unsubscribe(sid)                    # the emitter stops with the last subscriber
    await service.snapshot()                    # the same payload, on demand (REST)
    await service.stop()                        # withdraws this instance's report from Redis

One emitter task serves every subscriber of this process, each at its own interval, and exists only while
there is at least one. Each update is built once per tick: this instance's report, the other instances'
latest reports from Redis, and the shared figures from the database (each read with a timeout; a part that
fails is named in `errors` and the update still goes out).

With Redis, every instance publishes its report every MONITORING_REPORT_S seconds, or at the smallest interval
any dashboard in the cluster asked for (a key in Redis every emitter refreshes), so a dashboard on one instance
sees the others' calls at its own pace; a report lives two periods, so a dead instance drops out within two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..db.handle import DatabaseHandle
from ..settings import Settings
from ..version import VERSION
from . import shared
from .cluster import ClusterReports
from .hub import Monitoring
from .snapshot import merge

log = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[None]]
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 60.0
READ_TIMEOUT_S = 3.0  # each database or Redis read of one update
WARN_EVERY_S = 60.0


@dataclass
class Subscription:
    sid: str
    interval_s: float
    next_at: float


class MonitoringService:
    def __init__(
        self,
        monitoring: Monitoring,
        settings: Settings,
        database: DatabaseHandle,
        redis: aioredis.Redis | None,
        *,
        uptime_s: Callable[[], float],
        draining: Callable[[], bool],
        send: Send | None = None,
    ) -> None:
        self.monitoring = monitoring
        self.settings = settings
        self.database = database
        self.instance_id = settings.instance_id
        self.report_s = settings.monitoring_report_s
        self.cluster = ClusterReports(redis, self.instance_id) if redis is not None else None
        self.uptime_s = uptime_s
        self.draining = draining
        self.send = send
        self._subs: dict[str, Subscription] = {}
        self._wake = asyncio.Event()
        self._emitter: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._publish_now = asyncio.Event()
        self._remote_interval: float | None = None
        self._warned_at: dict[str, float] = {}
        self._stopping = False
        self.updates_sent = 0
        monitoring.metrics.watch_emitter(lambda: len(self._subs), lambda: self.emitter_running)

    # ----- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self.monitoring.loop_lag.start()
        if self.cluster is not None:
            self._publisher = asyncio.get_running_loop().create_task(self._publish_loop(), name="monitoring-publisher")

    def draining_now(self) -> None:
        """Report the drain at once, so dashboards show this instance as draining before it leaves."""
        self._publish_now.set()

    async def stop(self) -> None:
        """Let the emitter and the publisher finish what they are doing (a Redis command cancelled halfway
        can hold its connection for the socket timeout), cancel them if that takes too long, then withdraw."""
        self._stopping = True
        self._subs.clear()
        self._wake.set()
        self._publish_now.set()
        tasks = [t for t in (self._emitter, self._publisher) if t is not None and not t.done()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=2 * READ_TIMEOUT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._emitter = self._publisher = None
        if self.cluster is not None:
            try:
                await asyncio.wait_for(self.cluster.withdraw(), READ_TIMEOUT_S)
            except Exception as exc:  # it expires on its own within two periods
                log.warning("could not withdraw this instance's monitoring report: %r", exc)
        await self.monitoring.loop_lag.stop()

    # ----- subscribers and the emitter -----------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def emitter_running(self) -> bool:
        return self._emitter is not None and not self._emitter.done()

    def subscribe(self, sid: str, interval_s: float) -> None:
        """(Re)subscribe `sid`: an update at once, then every `interval_s` seconds."""
        if self._stopping:
            return
        if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
            raise ValueError(f"interval_s must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g}")
        faster = interval_s < self.publish_period()
        self._subs[sid] = Subscription(sid, float(interval_s), asyncio.get_running_loop().time())
        self._wake.set()
        if faster:
            self._publish_now.set()  # report at once, and at the new pace from now on
        if not self.emitter_running:
            self._emitter = asyncio.get_running_loop().create_task(self._emit_loop(), name="monitoring-emitter")

    def unsubscribe(self, sid: str) -> bool:
        found = self._subs.pop(sid, None) is not None
        self._wake.set()
        return found

    def local_interval(self) -> float | None:
        return min((s.interval_s for s in self._subs.values()), default=None)

    async def _emit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._subs:
                now = loop.time()
                due = [s for s in self._subs.values() if s.next_at <= now + 0.005]
                if due:
                    smallest = min(s.interval_s for s in self._subs.values())
                    await self._request_interval(smallest)
                    payload = await self.snapshot(window_s=smallest)
                    for sub in due:
                        if self._subs.get(sub.sid) is not sub:
                            continue  # left (or resubscribed) while the update was built
                        sub.next_at = max(sub.next_at + sub.interval_s, loop.time() + sub.interval_s / 2)
                        await self._send(sub, payload)
                if not self._subs:
                    break
                self._wake.clear()
                wait = min(s.next_at for s in self._subs.values()) - loop.time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            if self._emitter is asyncio.current_task():
                self._emitter = None

    async def _send(self, sub: Subscription, payload: dict[str, Any]) -> None:
        if self.send is None:
            return
        try:
            await self.send(sub.sid, {**payload, "interval_s": sub.interval_s})
            self.updates_sent += 1
        except Exception as exc:
            self._warn("send", "monitoring_update to %s failed: %r", sub.sid, exc)

    async def _request_interval(self, interval_s: float) -> None:
        if self.cluster is None:
            return
        try:
            await asyncio.wait_for(self.cluster.request_interval(interval_s), READ_TIMEOUT_S)
        except Exception as exc:
            self._warn("demand", "could not ask the cluster for %gs monitoring reports: %r", interval_s, exc)

    # ----- this instance's report and the publisher --------------------------------------------------

    def publish_period(self) -> float:
        candidates = [self.report_s, self.local_interval(), self._remote_interval]
        return min(c for c in candidates if c is not None)

    def local_report(self, window_s: float) -> dict[str, Any]:
        m = self.monitoring
        rows, totals, failed_tables = m.figures.read_tables()
        tallies, failed_tallies = m.figures.read_tallies()
        for table_rows in rows.values():
            for row in table_rows:
                row["instance"] = self.instance_id
        return {
            "instance": self.instance_id,
            "version": VERSION,
            "uptime_s": round(self.uptime_s(), 1),
            "draining": self.draining(),
            "reported_at": time.time(),
            "period_s": window_s,
            "figures": [t.describe() for t in m.figures.tables],
            "tables": rows,
            "totals": totals,
            "tallies": tallies,
            "failed": failed_tables + failed_tallies,
            "provider_status": m.providers.status(),
            "event_loop_lag_ms": m.loop_lag.summary(window_s),
            "monitoring": {"subscribers": self.subscribers, "emitter_running": self.emitter_running},
        }

    async def _publish_loop(self) -> None:
        assert self.cluster is not None
        while not self._stopping:
            period = self.publish_period()
            try:
                await asyncio.wait_for(self.cluster.publish(self.local_report(period), period), READ_TIMEOUT_S)
                self._remote_interval = await asyncio.wait_for(self.cluster.requested_interval(), READ_TIMEOUT_S)
            except Exception as exc:
                self._warn("publish", "could not publish this instance's monitoring report: %r", exc)
            if self._stopping:
                break
            self._publish_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._publish_now.wait(), self.publish_period())

    # ----- the payload -------------------------------------------------------------------------------

    async def snapshot(self, window_s: float | None = None) -> dict[str, Any]:
        window = window_s if window_s is not None else self.publish_period()
        errors: dict[str, str] = {}
        reports = [self.local_report(window)]
        if self.cluster is not None:
            try:
                others = await asyncio.wait_for(self.cluster.read(), READ_TIMEOUT_S)
                reports += [r for r in others if r.get("instance") != self.instance_id]
            except Exception as exc:
                self._warn("read", "could not read the other instances' reports: %r", exc)
                errors["instances"] = "message_queue_unavailable"
        figures, shared_errors = await self.shared_figures()
        errors.update(shared_errors)
        failed = reports[0]["failed"]
        if failed:
            errors["figures"] = "failed: " + ", ".join(failed)
        self.monitoring.metrics.set_jobs(figures.get("jobs"))
        return merge(
            reports, figures, served_by=self.instance_id, scope="cluster" if self.cluster else "local", errors=errors
        )

    async def shared_figures(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Recent calls, today's usage and job counts from the database; a part that fails is left out."""
        if not self.database.ready.is_set():
            return {}, dict.fromkeys(("recent_calls", "usage_today", "jobs"), "database_unavailable")
        try:
            db = self.database.get()
        except Exception:
            return {}, dict.fromkeys(("recent_calls", "usage_today", "jobs"), "database_unavailable")
        reads = {
            "recent_calls": shared.recent_calls(db),
            "usage_today": shared.usage_today(db),
            "jobs": shared.job_counts(db),
        }
        results = await asyncio.gather(
            *(asyncio.wait_for(r, READ_TIMEOUT_S) for r in reads.values()), return_exceptions=True
        )
        figures: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, result in zip(reads, results, strict=True):
            if isinstance(result, BaseException):
                self._warn(f"db-{name}", "monitoring could not read %s: %r", name, result)
                errors[name] = "database_unavailable"
            else:
                figures[name] = result
        return figures, errors

    async def job_counts(self) -> dict[str, int] | None:
        try:
            return await asyncio.wait_for(shared.job_counts(self.database.get()), READ_TIMEOUT_S)
        except Exception:
            return None

    def _warn(self, topic: str, message: str, *args: Any) -> None:
        """Log a recurring failure at most once a minute per topic."""
        now = time.monotonic()
        if now - self._warned_at.get(topic, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned_at[topic] = now
            log.warning(message, *args)
