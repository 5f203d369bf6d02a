"""Service index, readiness (`/health`) and liveness (`/health/live`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, current_app, jsonify

from ..runtime import Runtime, runtime
from ..sockets.server import connection_counts
from ..version import SERVICE_NAME, VERSION

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0


@blueprint.get("/")
async def index():  # type: ignore[no-untyped-def]
    """Service index: name, version, REST routes and Socket.IO namespaces."""
    rt = runtime()
    routes = sorted(
        {
            (rule.rule, ",".join(sorted(m for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))))
            for rule in current_app.url_map.iter_rules()
            if rule.endpoint != "static" and not rule.websocket
        }
    )
    websockets = sorted({rule.rule for rule in current_app.url_map.iter_rules() if rule.websocket})
    return jsonify(
        {
            "service": SERVICE_NAME,
            "version": VERSION,
            "routes": [{"path": path, "methods": methods.split(",")} for path, methods in routes],
            "websockets": websockets,
            "socketio": {"path": "/socket.io", "namespaces": sorted(rt.sio.namespace_handlers)},
        }
    )


@blueprint.get("/health/live")
async def live():  # type: ignore[no-untyped-def]
    """Liveness: the event loop answers. No I/O."""
    return jsonify({"status": "alive", "service": SERVICE_NAME, "version": VERSION})


@blueprint.get("/health")
async def health():  # type: ignore[no-untyped-def]
    """Readiness: a real database query, a Redis ping when configured, and provider configuration."""
    rt = runtime()
    database, message_queue = await asyncio.gather(_check_database(rt), _check_message_queue(rt))
    providers = {
        name: ("configured" if status.configured else "unconfigured")
        for name, status in rt.settings.providers().items()
    }
    healthy = database["status"] == "ok" and message_queue["status"] == "ok" and not rt.draining
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "service": SERVICE_NAME,
        "version": VERSION,
        "instance": rt.settings.instance_id,
        "async_mode": rt.sio.async_mode,
        "server": "hypercorn",
        "checks": {"database": database, "message_queue": message_queue, "providers": providers},
        "uptime_s": round(time.monotonic() - rt.started_at, 3),
        "connections": connection_counts(rt.sio),
    }
    if rt.draining:
        body["checks"]["draining"] = True
    return jsonify(body), 200 if healthy else 503


async def _check_database(rt: Runtime) -> dict[str, Any]:
    backend = "sqlite" if rt.settings.is_sqlite else "postgresql"
    if rt.db is None:
        return {"status": "error", "backend": backend, "error": "not connected yet (retrying)"}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(rt.db.fetch_val("SELECT 1"), CHECK_TIMEOUT_S)
    except Exception as exc:
        return {"status": "error", "backend": backend, "error": _short(exc)}
    return {"status": "ok", "backend": backend, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_message_queue(rt: Runtime) -> dict[str, Any]:
    if rt.redis is None:
        return {"status": "ok", "backend": "memory"}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(rt.redis.ping(), CHECK_TIMEOUT_S)
    except Exception as exc:
        return {"status": "error", "backend": "redis", "error": _short(exc)}
    return {"status": "ok", "backend": "redis", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
