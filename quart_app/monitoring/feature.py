"""The monitoring feature without its front end: the service, the connections tally, METRICS_BIND's exporter.

`sockets.monitoring.MonitoringSocket` is this feature with the `/monitoring` namespace; REST handlers reach it
with `web.state.feature(MonitoringFeature)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import redis.asyncio as aioredis

from ..db.handle import DatabaseHandle
from ..settings import Settings
from .exporter import MetricsExporter
from .figures import Tally
from .hub import Monitoring
from .service import MonitoringService


class MonitoringFeature:
    name = "monitoring"

    def __init__(
        self,
        monitoring: Monitoring,
        settings: Settings,
        database: DatabaseHandle,
        redis: aioredis.Redis | None,
        *,
        uptime_s: Callable[[], float],
        draining: Callable[[], bool],
        connection_counts: Callable[[], Mapping[str, float]],
    ) -> None:
        self.monitoring = monitoring
        self.service = MonitoringService(monitoring, settings, database, redis, uptime_s=uptime_s, draining=draining)
        monitoring.figures.add_tally(
            Tally(
                "connections",
                "Clients connected to this instance: Socket.IO namespaces and plain WebSocket routes.",
                "namespace",
                connection_counts,
            )
        )
        self.exporter: MetricsExporter | None = None
        if settings.metrics_exposure == "bind":
            self.exporter = MetricsExporter(settings.metrics_bind, self.render_metrics)

    async def render_metrics(self) -> bytes:
        """The Prometheus exposition, with the figures that need the database refreshed first."""
        self.monitoring.metrics.set_jobs(await self.service.job_counts())
        return self.monitoring.metrics.exposition()

    async def start(self) -> None:
        await self.service.start()
        if self.exporter is not None:
            await self.exporter.start()

    async def drain(self, deadline: float) -> None:
        self.service.draining_now()

    async def stop(self) -> None:
        if self.exporter is not None:
            await self.exporter.stop()
        await self.service.stop()
