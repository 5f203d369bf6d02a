"""Builds the python-socketio AsyncServer from Settings."""

from __future__ import annotations

import logging

import socketio

from ..settings import Settings
from .engine import EngineServer
from .fanout import FanoutManager, FanoutRedisManager, FanoutServer, install

log = logging.getLogger(__name__)


class Server(EngineServer, FanoutServer):
    """The AsyncServer: Engine.IO sockets without a task per message (engine.py), fan-out sends (fanout.py)."""


def build_socketio(settings: Settings) -> socketio.AsyncServer:
    # Both managers deliver locally through fanout.py: a broadcast is encoded once and written to each
    # recipient without a task per recipient (bench/capacity.py measures it against the stock manager).
    manager: socketio.AsyncManager = FanoutManager()
    if settings.redis_url:
        # Emits to rooms or broadcasts travel through Redis pub/sub so every instance's clients get them.
        manager = FanoutRedisManager(settings.redis_url, channel="voice-backend-socketio")
    # None means "same origin only" to python-socketio; "*" is honoured only when CORS_ORIGINS says so.
    origins: list[str] | str | None = list(settings.cors_origins) or None
    if settings.cors_origins == ("*",):
        origins = "*"
    sio = Server(
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
    return install(sio)
