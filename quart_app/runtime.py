"""The per-process resources a request may need, opened in `while_serving` and reached via `runtime()`."""

from __future__ import annotations

import asyncio
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

    from .auth.counters import CounterStore
    from .auth.jwt_verifier import Auth0Verifier
    from .auth.lockout import PinLockout
    from .auth.rate_limit import RateLimiter
    from .auth.sessions import SessionTokens
    from .providers.auth0 import Auth0Client
    from .providers.registry import Providers
    from .transcribe.jobs import JobRunner


@dataclass
class Runtime:
    settings: Settings
    sio: socketio.AsyncServer
    db: Database | None = None
    redis: aioredis.Redis | None = None
    http: aiohttp.ClientSession | None = None
    counters: CounterStore | None = None
    rate_limiter: RateLimiter | None = None
    pin_lockout: PinLockout | None = None
    sessions: SessionTokens | None = None
    auth0: Auth0Client | None = None
    verifier: Auth0Verifier | None = None
    jobs: JobRunner | None = None  # background transcription jobs, started in `serving`
    providers: Providers = None  # type: ignore[assignment]  # set in create_app
    db_ready: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = field(default_factory=time.monotonic)
    draining: bool = False
    secret_key: str = ""

    def database(self) -> Database:
        from .errors import APIError

        if self.db is None or not self.db.is_connected:
            raise APIError(503, "database_unavailable", "The database is not reachable right now.")
        return self.db


def runtime() -> Runtime:
    return current_app.extensions["runtime"]  # type: ignore[no-any-return]
