"""The per-process resources every feature may use, opened once in `while_serving`.

`open_resources` builds a frozen `Resources` whose fields are all set before serving starts; a field is
`None` only when its configuration is absent (no REDIS_URL, no Auth0), never because it is "not open yet".
The database connects in the background (`DatabaseHandle`), so an outage degrades features, not boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import redis.asyncio as aioredis
import socketio
from databases import Database

from .auth.counters import CounterStore, MemoryCounters, RedisCounters
from .auth.identity import Authenticator
from .auth.jwt_verifier import Auth0Verifier
from .auth.lockout import PinLockout
from .auth.rate_limit import RateLimiter, SignInRateLimit
from .auth.sessions import SessionTokens
from .auth.signin import PinHasher, PinSignIn
from .billing import Billing
from .db.handle import DatabaseHandle
from .monitoring.hub import Monitoring
from .monitoring.providers import instrument
from .providers.auth0 import Auth0Client
from .providers.registry import Providers, build_providers
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    """Whether this instance should get new work; `/health` answers 503 once draining starts."""

    started_at: float = field(default_factory=time.monotonic)
    draining: bool = False

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at


class TrackedSocket:
    """One open plain WebSocket: its handler watches `closing` and closes itself (1001) when it is set."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.closing = asyncio.Event()
        self.closed = asyncio.Event()
        # Tasks blocked in `web.websockets.receive_or_drain`; the drain cancels them to wake them up.
        self.receivers: set[asyncio.Task[object]] = set()

    def close(self) -> None:
        self.closing.set()
        for task in list(self.receivers):
            task.cancel()


class WebSocketRegistry:
    """The plain (non-Socket.IO) WebSockets open in this process, so the drain can close them."""

    def __init__(self) -> None:
        self._open: set[TrackedSocket] = set()

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for socket in self._open:
            result[socket.kind] = result.get(socket.kind, 0) + 1
        return result

    @contextlib.asynccontextmanager
    async def track(self, kind: str) -> AsyncIterator[TrackedSocket]:
        socket = TrackedSocket(kind)
        self._open.add(socket)
        try:
            yield socket
        finally:
            self._open.discard(socket)
            socket.closed.set()

    async def close_all(self, within: float) -> int:
        """Ask every open socket to close and wait (at most `within` s) until their handlers are done."""
        sockets = list(self._open)
        for socket in sockets:
            socket.close()
        if sockets:
            await asyncio.wait([asyncio.create_task(s.closed.wait()) for s in sockets], timeout=within)
        return len(sockets)


@dataclass(frozen=True)
class Resources:
    settings: Settings
    sio: socketio.AsyncServer
    database: DatabaseHandle
    redis: aioredis.Redis | None  # None without REDIS_URL
    http: aiohttp.ClientSession
    counters: CounterStore
    rate_limiter: RateLimiter
    pin_lockout: PinLockout
    sessions: SessionTokens
    auth0: Auth0Client | None  # None without AUTH0_DOMAIN / AUTH0_BASE_URL
    verifier: Auth0Verifier | None  # None unless Auth0 has a domain and an audience
    authenticator: Authenticator
    pin_signin: PinSignIn
    providers: Providers
    billing: Billing
    readiness: Readiness
    websockets: WebSocketRegistry
    monitoring: Monitoring  # figures the features register, provider calls, loop lag, Prometheus
    secret_key: str = field(repr=False)

    def db(self) -> Database:
        """The connected database, or DatabaseNotReady (503)."""
        return self.database.get()

    def connection_counts(self) -> dict[str, int]:
        """Clients connected to this process: per Socket.IO namespace, and per kind of plain WebSocket."""
        manager = self.sio.manager
        counts = {ns: 0 for ns in self.sio.namespace_handlers}
        for namespace in manager.get_namespaces():
            counts[namespace] = sum(1 for _ in manager.get_participants(namespace, None))
        counts.update(self.websockets.counts())
        return counts


@contextlib.asynccontextmanager
async def open_resources(settings: Settings, sio: socketio.AsyncServer, secret_key: str) -> AsyncIterator[Resources]:
    """Everything opened here is closed on the way out, in reverse order, whatever failed."""
    async with contextlib.AsyncExitStack() as stack:
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=10))
        stack.push_async_callback(http.close)
        redis = None
        if settings.redis_url:
            redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
            stack.push_async_callback(_quietly, redis.aclose)
        monitoring = Monitoring(settings)
        providers = instrument(build_providers(settings), monitoring.providers)  # provider calls are measured
        stack.push_async_callback(_quietly, providers.close)
        database = DatabaseHandle(settings.database_url, settings.database_pool_size)
        stack.push_async_callback(database.close)
        # Socket.IO stops before the database closes: its handlers may still be writing.
        stack.push_async_callback(sio.shutdown)

        counters: CounterStore = (
            RedisCounters(redis) if redis is not None else MemoryCounters(settings.memory_counters_max_keys)
        )
        sessions = SessionTokens(secret_key)
        pin_lockout = PinLockout(
            counters, settings.pin_max_attempts, settings.pin_lockout_seconds, settings.pin_account_max_attempts
        )
        pin_limits = SignInRateLimit(
            counters, settings.pin_signin_address_per_minute, settings.pin_signin_account_per_minute
        )
        pin_hasher = PinHasher(settings.pin_hash_threads, settings.pin_hash_queue)
        stack.callback(pin_hasher.close)
        auth0 = Auth0Client(settings.auth0_url, settings.auth0_request_timeout, http) if settings.auth0_url else None
        verifier = None
        if auth0 is not None and settings.auth0_issuer and settings.auth0_audience:
            verifier = Auth0Verifier(
                auth0, settings.auth0_issuer, settings.auth0_audience, min_refetch_s=settings.auth0_jwks_min_refresh_s
            )
        if settings.allow_insecure_session_auth:
            log.warning(
                "SECURITY WARNING: ALLOW_INSECURE_SESSION_AUTH=true enables /mobile-auth, which signs "
                "users in without any secret. Never enable it on a public deployment."
            )
        resources = Resources(
            settings=settings,
            sio=sio,
            database=database,
            redis=redis,
            http=http,
            counters=counters,
            rate_limiter=RateLimiter(counters, settings.rate_limit_per_minute),
            pin_lockout=pin_lockout,
            sessions=sessions,
            auth0=auth0,
            verifier=verifier,
            authenticator=Authenticator(settings, database, verifier, sessions),
            pin_signin=PinSignIn(database, pin_lockout, sessions, pin_limits, pin_hasher),
            providers=providers,
            billing=Billing(database, settings.prices),
            readiness=Readiness(),
            websockets=WebSocketRegistry(),
            monitoring=monitoring,
            secret_key=secret_key,
        )
        database.open_in_background()
        yield resources
    log.info("resources closed")


async def _quietly(close: Callable[[], Awaitable[object]]) -> None:
    with contextlib.suppress(Exception):
        await close()
