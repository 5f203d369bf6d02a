"""`METRICS_EXPOSURE=bind`: `/metrics` on an address of its own (a private port for the scraper), no auth.

exporter = MetricsExporter("127.0.0.1:9464", render)    # render: async () -> bytes
await exporter.start(); ...; await exporter.stop()
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

Render = Callable[[], Awaitable[bytes]]


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class MetricsExporter:
    def __init__(self, bind: str, render: Render) -> None:
        self.host, self.port = split_bind(bind)
        self.render = render
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        log.info("metrics served on http://%s:%d/metrics", self.host, self.port)

    @property
    def bound_port(self) -> int | None:
        """The port actually bound (useful with port 0)."""
        if self._runner is None:
            return None
        for site in self._runner.sites:
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            for sock in sockets:
                return int(sock.getsockname()[1])
        return None

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
