"""Opening and closing the process's resources, and draining Socket.IO clients on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import AsyncIterator

import aiohttp
import socketio

from .auth.counters import MemoryCounters, RedisCounters
from .auth.jwt_verifier import Auth0Verifier
from .auth.lockout import PinLockout
from .auth.rate_limit import RateLimiter
from .auth.sessions import SessionTokens
from .db import migrations
from .db.database import DatabaseUnavailable, connect, open_database
from .providers.auth0 import Auth0Client
from .runtime import Runtime
from .settings import redact_url
from .transcribe.jobs import JobRunner
from .version import VERSION

log = logging.getLogger(__name__)

DB_RETRY_SECONDS = 3.0


@contextlib.asynccontextmanager
async def serving(rt: Runtime) -> AsyncIterator[None]:
    """Everything opened here is closed on the way out, in reverse order, whatever failed."""
    settings = rt.settings
    rt.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=10))
    if settings.redis_url:
        import redis.asyncio as aioredis

        rt.redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    _build_auth(rt)
    db_task = asyncio.create_task(_open_database(rt), name="open-database")
    rt.jobs = JobRunner(rt)
    rt.jobs.start()  # resumes interrupted jobs once the database is open
    _install_drain_on_sigterm(rt)
    watcher = _watch_worker_shutdown(rt)
    await _announce(rt, "instance_up")
    try:
        yield
    finally:
        await drain(rt)
        if watcher is not None:
            watcher.cancel()
        # Before the database closes: interrupted jobs are written back as queued, to resume at next start.
        await rt.jobs.close()
        db_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await db_task
        await rt.sio.shutdown()
        if rt.db is not None and rt.db.is_connected:
            with contextlib.suppress(Exception):
                await rt.db.disconnect()
        if rt.redis is not None:
            with contextlib.suppress(Exception):
                await rt.redis.aclose()
        with contextlib.suppress(Exception):
            await rt.providers.close()
        await rt.http.close()
        log.info("shutdown complete")


def _build_auth(rt: Runtime) -> None:
    settings = rt.settings
    assert rt.http is not None
    rt.counters = RedisCounters(rt.redis) if rt.redis is not None else MemoryCounters()
    rt.rate_limiter = RateLimiter(rt.counters, settings.rate_limit_per_minute)
    rt.pin_lockout = PinLockout(rt.counters, settings.pin_max_attempts, settings.pin_lockout_seconds)
    rt.sessions = SessionTokens(rt.secret_key)
    if settings.auth0_url:
        rt.auth0 = Auth0Client(settings.auth0_url, settings.auth0_request_timeout, rt.http)
    if rt.auth0 is not None and settings.auth0_issuer and settings.auth0_audience:
        rt.verifier = Auth0Verifier(
            rt.auth0, settings.auth0_issuer, settings.auth0_audience, min_refetch_s=settings.auth0_jwks_min_refresh_s
        )
    if settings.allow_insecure_session_auth:
        log.warning("SECURITY WARNING: ALLOW_INSECURE_SESSION_AUTH=true enables /mobile-auth, which signs "
                    "users in without any secret. Never enable it on a public deployment.")


async def _open_database(rt: Runtime) -> None:
    """Connect (and migrate) in the background, retrying, so a database outage degrades features, not boot."""
    settings = rt.settings
    db = open_database(settings.database_url, settings.database_pool_size)
    first = True
    while True:
        try:
            await connect(db)
            break
        except DatabaseUnavailable as exc:
            if first:
                log.error("%s; retrying every %.0fs", exc, DB_RETRY_SECONDS)
                first = False
            await asyncio.sleep(DB_RETRY_SECONDS)
    applied = await migrations.upgrade(db)
    if applied:
        log.info("database %s migrated: %s", redact_url(settings.database_url), [m.version for m in applied])
    rt.db = db
    rt.db_ready.set()
    log.info("database ready (%s)", "sqlite" if settings.is_sqlite else "postgresql")


async def wait_for_database(rt: Runtime, within: float) -> bool:
    """True once the database is connected and migrated; False if that takes longer than `within` s."""
    try:
        await asyncio.wait_for(rt.db_ready.wait(), within)
    except TimeoutError:
        return False
    return True


async def _announce(rt: Runtime, event: str) -> None:
    """Tell every client of every instance (through Redis when configured) that this instance came or goes."""
    try:
        await asyncio.wait_for(
            rt.sio.emit(event, {"instance": rt.settings.instance_id, "version": VERSION}, namespace="/"), 3
        )
    except Exception as exc:  # the message queue being down must not stop boot or shutdown
        log.warning("could not announce %s: %s", event, exc)


async def drain(rt: Runtime) -> None:
    """Announce shutdown, then disconnect this process's Socket.IO clients so their sockets close now."""
    if rt.draining:
        return
    rt.draining = True
    # This process's clients get `instance_down` and the DISCONNECT queued back to back, with nothing in
    # between that yields to the event loop: a long-polling client must find both in the one response to
    # its pending GET, because hypercorn, now shutting down, closes that connection after the response
    # and accepts no new one, so a second poll would hang. (sio.emit yields between queuing and
    # returning, which let the pending poll go out with the event alone.)
    notice = rt.sio.packet_class(
        socketio.packet.EVENT,
        namespace="/",
        data=["instance_down", {"instance": rt.settings.instance_id, "version": VERSION}],
    )
    manager = rt.sio.manager
    for namespace in list(manager.get_namespaces()):
        for sid, eio_sid in list(manager.get_participants(namespace, None)):
            with contextlib.suppress(Exception):
                if namespace == "/":
                    await rt.sio._send_packet(eio_sid, notice)
                await rt.sio.disconnect(sid, namespace=namespace, ignore_queue=True)
    # End the Engine.IO sessions too (their CLOSE packet follows in the same response), so a polling
    # client's next request is refused at once instead of waiting in a long-poll that nothing will answer.
    # close(wait=False): eio.disconnect() would wait for the client to fetch the packet.
    for eio_socket in list(rt.sio.eio.sockets.values()):
        with contextlib.suppress(Exception):
            await eio_socket.close(wait=False)
    # Then the other instances' clients, through the message queue (none of ours are left to get it twice).
    await _announce(rt, "instance_down")
    _stop_websocket_keepalive_pings()
    log.info("drained Socket.IO clients")


def _stop_websocket_keepalive_pings() -> None:
    """Let hypercorn finish closed WebSocket connections now instead of at their next keep-alive ping.

    Hypercorn (0.18) runs one `WSStream._send_pings` task per WebSocket when websocket_ping_interval is
    set; it notices a closed socket only when its sleep ends, and the connection's task waits for it.
    Shutdown waits for connection tasks, so each WebSocket open in the last interval (20 s, as long as
    graceful_timeout) held the process for up to the whole interval. While shutting down the pings are
    useless, and cancelling them is clean: a task group ignores children that were cancelled.
    """
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__qualname__", "") == "WSStream._send_pings":
            task.cancel()


def _install_drain_on_sigterm(rt: Runtime) -> None:
    """Hypercorn waits for open WebSockets before running lifespan shutdown, so drain them as SIGTERM arrives.

    In hypercorn's single-process mode its own SIGTERM handler lives on this loop; we take SIGTERM over,
    start the drain, and hand the shutdown back to hypercorn through SIGINT (which it also handles). In
    multi-worker mode the parent process owns the signals and workers are told through an event, so we
    leave them alone and drain at lifespan shutdown instead.
    """
    if multiprocessing.parent_process() is not None or not _hypercorn_owns_sigint():
        return
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        log.info("SIGTERM: draining Socket.IO clients and shutting down")
        loop.create_task(drain(rt), name="drain")
        signal.raise_signal(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        pass


def _watch_worker_shutdown(rt: Runtime) -> asyncio.Task[None] | None:
    """In a hypercorn worker process, drain as soon as the parent asks the workers to stop.

    Hypercorn runs the app in a spawned worker whenever `workers >= 1` (hypercorn.toml's `workers = 1`
    included); the parent takes SIGTERM and sets the `shutdown_event` it passed to the worker. The worker
    then waits up to graceful_timeout for open WebSockets before lifespan shutdown, so without this the
    drain would only start after that wait. Hypercorn polls the same event every 0.1 s; so do we.
    """
    if multiprocessing.parent_process() is None:
        return None
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None) or {}
    event = kwargs.get("shutdown_event")
    if event is None or not callable(getattr(event, "is_set", None)):
        return None

    async def watch() -> None:
        while not event.is_set():  # noqa: ASYNC110 - a multiprocessing.Event cannot be awaited
            await asyncio.sleep(0.1)
        log.info("shutdown requested: draining Socket.IO clients")
        await drain(rt)

    return asyncio.get_running_loop().create_task(watch(), name="drain-on-worker-shutdown")


def _hypercorn_owns_sigint() -> bool:
    """True when SIGINT is routed to an asyncio loop handler (hypercorn's serve), not Python's default."""
    handler = signal.getsignal(signal.SIGINT)
    return getattr(handler, "__name__", "") == "_sighandler_noop"
