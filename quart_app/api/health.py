"""Service index, readiness (`/health`) and liveness (`/health/live`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, current_app, jsonify
from quart.typing import ResponseReturnValue

from ..resources import Resources
from ..version import SERVICE_NAME, VERSION
from ..web.state import resources

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0


@blueprint.get("/")
async def index() -> ResponseReturnValue:
    """Service index: name, version, REST routes and Socket.IO namespaces."""
    rs = resources()
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
            "socketio": {"path": "/socket.io", "namespaces": sorted(rs.sio.namespace_handlers)},
        }
    )


@blueprint.get("/health/live")
async def live() -> ResponseReturnValue:
    """Liveness: the event loop answers. No I/O."""
    return jsonify({"status": "alive", "service": SERVICE_NAME, "version": VERSION})


@blueprint.get("/health")
async def health() -> ResponseReturnValue:
    """Readiness: a real database query, a Redis ping when configured, and provider configuration."""
    rs = resources()
    database, message_queue = await asyncio.gather(_check_database(rs), _check_message_queue(rs))
    providers = {
        name: ("configured" if status.configured else "unconfigured")
        for name, status in rs.settings.providers().items()
    }
    healthy = database["status"] == "ok" and message_queue["status"] == "ok" and not rs.readiness.draining
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "service": SERVICE_NAME,
        "version": VERSION,
        "instance": rs.settings.instance_id,
        "async_mode": rs.sio.async_mode,
        "server": "hypercorn",
        "checks": {"database": database, "message_queue": message_queue, "providers": providers},
        "uptime_s": round(rs.readiness.uptime_s, 3),
        "connections": rs.connection_counts(),
    }
    if rs.readiness.draining:
        body["checks"]["draining"] = True
    return jsonify(body), 200 if healthy else 503


async def _check_database(rs: Resources) -> dict[str, Any]:
    backend = rs.database.backend
    if not rs.database.ready.is_set():
        reason = rs.database.last_error or "not connected yet"
        return {"status": "error", "backend": backend, "error": f"{reason[:200]} (retrying)"}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(rs.database.database.fetch_val("SELECT 1"), CHECK_TIMEOUT_S)
    except Exception as exc:
        return {"status": "error", "backend": backend, "error": _short(exc)}
    return {"status": "ok", "backend": backend, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_message_queue(rs: Resources) -> dict[str, Any]:
    if rs.redis is None:
        return {"status": "ok", "backend": "memory"}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(rs.redis.ping(), CHECK_TIMEOUT_S)
    except Exception as exc:
        return {"status": "error", "backend": "redis", "error": _short(exc)}
    return {"status": "ok", "backend": "redis", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
