"""Builds the python-socketio AsyncServer from Settings."""

from __future__ import annotations

import logging

import socketio

from ..runtime import Runtime
from ..settings import Settings
from .system import SystemNamespace

log = logging.getLogger(__name__)


def build_socketio(settings: Settings) -> socketio.AsyncServer:
    manager = None
    if settings.redis_url:
        # Emits to rooms or broadcasts travel through Redis pub/sub so every instance's clients get them.
        manager = socketio.AsyncRedisManager(settings.redis_url, channel="voice-backend-socketio")
    # None means "same origin only" to python-socketio; "*" is honoured only when CORS_ORIGINS says so.
    origins: list[str] | str | None = list(settings.cors_origins) or None
    if settings.cors_origins == ("*",):
        origins = "*"
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=origins,
        cors_credentials=origins != "*",
        ping_interval=settings.socketio_ping_interval,
        ping_timeout=settings.socketio_ping_timeout,
        max_http_buffer_size=settings.socketio_max_http_buffer_size,
        logger=logging.getLogger("socketio.server"),
        engineio_logger=logging.getLogger("engineio.server"),
    )
    return sio


def register_namespaces(sio: socketio.AsyncServer, rt: Runtime) -> None:
    """One AsyncNamespace per file; each gets the Runtime (there is no Quart app context in handlers)."""
    sio.register_namespace(SystemNamespace("/", rt))


def connection_counts(sio: socketio.AsyncServer) -> dict[str, int]:
    """Clients connected to this process, per namespace."""
    manager = sio.manager
    counts = {ns: 0 for ns in sio.namespace_handlers}
    for namespace in manager.get_namespaces():
        counts[namespace] = sum(1 for _ in manager.get_participants(namespace, None))
    return counts
