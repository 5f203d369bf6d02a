"""Namespace "/monitoring": the live operations view, for admins only.

    io(url + "/monitoring", {auth: {token}, transports: ["websocket"]})   # admin API key, Auth0 token or session
    -> start_monitoring {interval_s: 1..60}     ack {ok: true, interval_s} | {ok: false, error, message}
    <- monitoring_update {...}                  at once, then every interval_s seconds
    -> stop_monitoring                          ack {ok: true}
    <- monitoring_error {error, message}        a refused start_monitoring (also in its ack)

A client that is not an admin is refused at connect (`connect_error` {"message": "Admin role required",
"data": {"error": "forbidden"}}). The feature `MonitoringSocket` owns the `MonitoringService` (one emitter for
all subscribers, the Redis publisher) and registers the figures of the resources (connections); features
register theirs through `monitored(factory, register)` in the app's feature list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import socketio
from socketio.exceptions import ConnectionRefusedError

from ..calls.feature import RealtimeCalls
from ..features import Feature, FeatureFactory
from ..live.feature import LiveStreams
from ..monitoring import adapters
from ..monitoring.feature import MonitoringFeature
from ..monitoring.figures import FigureRegistry
from ..monitoring.service import MAX_INTERVAL_S, MIN_INTERVAL_S, MonitoringService
from ..resources import Resources
from .handshake import authenticate_handshake

log = logging.getLogger(__name__)

NAMESPACE = "/monitoring"
UPDATE = "monitoring_update"
ERROR = "monitoring_error"
ADMIN_REQUIRED = "Admin role required"

F = TypeVar("F", bound=Feature)


class MonitoringNamespace(socketio.AsyncNamespace):
    def __init__(self, resources: Resources, service: MonitoringService) -> None:
        super().__init__(NAMESPACE)
        self.resources = resources
        self.service = service

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_handshake(self.resources.authenticator, auth, required=True)
        if principal is None or not principal.is_admin:
            raise ConnectionRefusedError(ADMIN_REQUIRED, {"error": "forbidden"})
        await self.save_session(sid, {"user_id": principal.user.id})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.service.unsubscribe(sid)

    async def on_start_monitoring(self, sid: str, data: Any = None) -> dict[str, Any]:
        interval = data.get("interval_s", 5) if isinstance(data, dict) else data if data is not None else 5
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not math.isfinite(interval):
            return await self._refuse(sid, "interval_s must be a number of seconds")
        if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            return await self._refuse(sid, f"interval_s must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g}")
        self.service.subscribe(sid, float(interval))
        return {"ok": True, "interval_s": float(interval)}

    async def on_stop_monitoring(self, sid: str, data: Any = None) -> dict[str, Any]:
        self.service.unsubscribe(sid)
        return {"ok": True}

    async def _refuse(self, sid: str, message: str) -> dict[str, Any]:
        body = {"error": "validation_error", "message": message}
        await self.emit(ERROR, body, to=sid, ignore_queue=True)
        return {"ok": False, **body}

    async def send_update(self, sid: str, payload: dict[str, Any]) -> None:
        # This process holds the client: no need to go through the message queue.
        await self.emit(UPDATE, payload, to=sid, ignore_queue=True)


class MonitoringSocket(MonitoringFeature):
    """The monitoring feature with its Socket.IO front end: `start()` registers "/monitoring"."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(
            resources.monitoring,
            resources.settings,
            resources.database,
            resources.redis,
            uptime_s=lambda: resources.readiness.uptime_s,
            draining=lambda: resources.readiness.draining,
            connection_counts=resources.connection_counts,
        )
        self.sio = resources.sio
        self.namespace = MonitoringNamespace(resources, self.service)
        self.service.send = self.namespace.send_update

    async def start(self) -> None:
        self.sio.register_namespace(self.namespace)
        await super().start()


# ----- the features' figures: adapters registered as the app builds each feature --------------------------


def monitored(factory: Callable[[Resources], F], register: Callable[[FigureRegistry, F], None]) -> FeatureFactory:
    """A feature factory that also registers the feature's figures: `monitored(_realtime_calls, calls_figures)`."""

    def build(resources: Resources) -> F:
        feature = factory(resources)
        register(resources.monitoring.figures, feature)
        return feature

    return build


def calls_figures(registry: FigureRegistry, calls: RealtimeCalls) -> None:
    adapters.register_calls(registry, calls)


def stream_figures(registry: FigureRegistry, streams: LiveStreams) -> None:
    adapters.register_streams(registry, lambda: streams.sessions)
