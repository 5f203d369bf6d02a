"""Service index, readiness (`/health`) and liveness (`/health/live`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from quart import Blueprint, current_app, jsonify
from quart.typing import ResponseReturnValue

from ..media.tools import MEDIA_TOOLS, MISSING
from ..resources import Resources
from ..version import SERVICE_NAME, VERSION
from ..web.guards import authenticate_request
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


# Also served, byte for byte, before the app by web/live.py (app.py builds that answer from this body).
LIVE_BODY = {"status": "alive", "service": SERVICE_NAME, "version": VERSION}


@blueprint.get("/health/live")
async def live() -> ResponseReturnValue:
    """Liveness: the event loop answers. No I/O."""
    return jsonify(LIVE_BODY)


@blueprint.get("/health")
async def health() -> ResponseReturnValue:
    """Readiness: a real database query, a Redis ping when configured (one entry each in CHECKS).

    Anyone gets `status`, `service`, `version`, `async_mode` and each check's `status`; an admin credential
    (the admin routes' API key or Auth0 token) gets the detail too: backends, latencies, error text, provider
    configuration, instance, uptime and connections. A missing, invalid or non-admin credential gets the
    public answer (never a 401: balancers call this without one), and the status code is the same for both.
    """
    rs = resources()
    names = list(CHECKS)
    results = await asyncio.gather(*(CHECKS[name].run(rs) for name in names))
    checks: dict[str, Any] = dict(zip(names, results, strict=True))
    healthy = not rs.readiness.draining and all(
        checks[name]["status"] == "ok" for name in names if CHECKS[name].required
    )
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "service": SERVICE_NAME,
        "version": VERSION,
        "async_mode": rs.sio.async_mode,
    }
    if await _caller_is_admin():
        body |= {
            "instance": rs.settings.instance_id,
            "server": "hypercorn",
            "checks": {**checks, "providers": _providers(rs)},
            "uptime_s": round(rs.readiness.uptime_s, 3),
            "connections": rs.connection_counts(),
        }
    else:
        body["checks"] = {name: {"status": check["status"]} for name, check in checks.items()}
    if rs.readiness.draining:
        body["checks"]["draining"] = True
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    # The answer depends on the credential: no shared cache may keep an admin's answer for anyone else.
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(("Authorization", "X-API-Key"))
    return response


async def _caller_is_admin() -> bool:
    """True only for a valid admin credential (the admin routes' authentication); anything else (none, invalid,
    non-admin, or the database down so it cannot be checked) is an anonymous caller, so the answer tells nothing
    about a credential that fails."""
    try:
        principal = await asyncio.wait_for(authenticate_request(), CHECK_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - 401, 503 database_unavailable, a stalled database: all "not an admin"
        return False
    return principal.is_admin


def _providers(rs: Resources) -> dict[str, str]:
    return {
        name: ("configured" if status.configured else "unconfigured")
        for name, status in rs.settings.providers().items()
    }


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


async def _check_media_tools() -> dict[str, Any]:
    """ffmpeg's and ffprobe's versions, or "missing"; error when either is (media uploads then answer 503)."""
    versions = await MEDIA_TOOLS.versions()
    missing = [tool for tool, version in versions.items() if version == MISSING]
    if missing:
        return {"status": "error", **versions, "error": f"{' and '.join(missing)} not found on PATH"}
    return {"status": "ok", **versions}


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


@dataclass(frozen=True)
class Check:
    """One readiness check: `run` answers {"status": "ok" | "error", ...detail}. Only `status` is public; a
    failing `required` check makes /health answer 503."""

    run: Callable[[Resources], Awaitable[dict[str, Any]]]
    required: bool = True


# The checks, in the order they appear in the answer. Adding a check is one entry here.
CHECKS: dict[str, Check] = {
    "database": Check(_check_database),
    "message_queue": Check(_check_message_queue),
    # Not required: without ffmpeg/ffprobe only media uploads fail (503 media_tools_unavailable); the rest serves.
    "media_tools": Check(lambda rs: _check_media_tools(), required=False),
}
