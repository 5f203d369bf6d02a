"""The per-process resources a request may need, opened in `while_serving` and reached via `runtime()`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from databases import Database
from quart import current_app

from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    import redis.asyncio as aioredis
    import socketio


@dataclass
class Runtime:
    settings: Settings
    sio: socketio.AsyncServer
    db: Database | None = None
    redis: aioredis.Redis | None = None
    http: aiohttp.ClientSession | None = None
    started_at: float = field(default_factory=time.monotonic)
    draining: bool = False

    def database(self) -> Database:
        from .errors import APIError

        if self.db is None or not self.db.is_connected:
            raise APIError(503, "database_unavailable", "The database is not reachable right now.")
        return self.db


def runtime() -> Runtime:
    return current_app.extensions["runtime"]  # type: ignore[no-any-return]
