"""Figures every instance reads from the shared database: recent calls, usage, jobs (cluster-wide by nature).

Read-only aggregate queries over the existing tables; the calls themselves come from `db.calls`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from databases import Database

from ..db import calls as call_store
from ..db.database import dialect
from ..db.tables import transcription_jobs, usage_logs
from .figures import mask_phone

DAY_S = 86400
RECENT_CALLS = 20
LIVE_RELAY = "live"


def day_start(at: float) -> float:
    return float(int(at // DAY_S) * DAY_S)


def call_row(call: Any, now: float) -> dict[str, Any]:
    """A stored call as the dashboard shows it (the caller masked; the relay's columns when present)."""
    started = getattr(call, "started_at", None)
    ended = getattr(call, "ended_at", None)
    duration = call.duration_s
    if duration is None and started is not None:
        duration = round((ended if ended is not None else now) - started, 1)
    relay = getattr(call, "relay_status", None)
    return {
        "call_sid": call.call_sid,
        "tenant_id": getattr(call, "tenant_id", None),
        "caller": mask_phone(call.from_number),
        "direction": call.direction,
        "status": LIVE_RELAY if relay == LIVE_RELAY and ended is None else call.status,
        "duration_s": duration,
        "end_reason": getattr(call, "end_reason", None),
        "started_at": started if started is not None else call.created_at,
        "updated_at": call.updated_at,
    }


async def recent_calls(db: Database, limit: int = RECENT_CALLS) -> list[dict[str, Any]]:
    now = time.time()
    return [call_row(c, now) for c in await call_store.recent_calls(db, limit=limit)]


def _usage_columns() -> list[Any]:
    u = usage_logs.c
    return [
        sa.func.count().label("requests"),
        sa.func.coalesce(sa.func.sum(u.audio_seconds), 0.0).label("audio_seconds"),
        sa.func.coalesce(sa.func.sum(u.characters), 0).label("characters"),
        sa.func.coalesce(sa.func.sum(u.cost_usd), 0.0).label("cost_usd"),
    ]


def _usage_values(row: Any) -> dict[str, Any]:
    return {
        "requests": int(row["requests"]),
        "audio_seconds": round(float(row["audio_seconds"]), 3),
        "characters": int(row["characters"]),
        "cost_usd": round(float(row["cost_usd"]), 6),
    }


async def usage_today(db: Database, now: float | None = None) -> list[dict[str, Any]]:
    """Every user's metered usage since 00:00 UTC, by service."""
    since = day_start(time.time() if now is None else now)
    query = (
        sa.select(usage_logs.c.service, *_usage_columns())
        .where(usage_logs.c.created_at >= since)
        .group_by(usage_logs.c.service)
        .order_by(usage_logs.c.service)
    )
    return [{"service": row["service"], **_usage_values(row)} for row in await db.fetch_all(query)]


async def usage_by_day(db: Database, days: int, now: float | None = None) -> dict[str, Any]:
    """Usage per UTC day and service for the last `days` days (today included), zero-filled."""
    today = day_start(time.time() if now is None else now)
    since = today - (days - 1) * DAY_S
    created = usage_logs.c.created_at
    day_number = (
        sa.cast(sa.func.floor(created / DAY_S), sa.Integer)
        if dialect(db) == "postgresql"
        else sa.cast(created / DAY_S, sa.Integer)
    ).label("day")
    query = (
        sa.select(day_number, usage_logs.c.service, *_usage_columns())
        .where(created >= since)
        .group_by(day_number, usage_logs.c.service)
    )
    first = int(since // DAY_S)
    labels = [datetime.fromtimestamp((first + i) * DAY_S, UTC).strftime("%Y-%m-%d") for i in range(days)]
    series: dict[str, dict[str, list[Any]]] = {}
    for row in await db.fetch_all(query):
        index = int(row["day"]) - first
        if not 0 <= index < days:
            continue
        values = _usage_values(row)
        service = series.setdefault(
            row["service"], {"requests": [0] * days, "cost_usd": [0.0] * days, "audio_seconds": [0.0] * days}
        )
        for name in ("requests", "cost_usd", "audio_seconds"):
            service[name][index] += values[name]
    return {
        "days": labels,
        "services": [{"service": name, **series[name]} for name in sorted(series)],
    }


async def job_counts(db: Database, now: float | None = None) -> dict[str, int]:
    """Jobs queued and running now, and failed in the last 24 h, across every instance."""
    since = (time.time() if now is None else now) - DAY_S
    j = transcription_jobs.c
    query = (
        sa.select(j.status, sa.func.count().label("n"))
        .where(sa.or_(j.status.in_(("queued", "running")), sa.and_(j.status == "failed", j.updated_at >= since)))
        .group_by(j.status)
    )
    counts = {"queued": 0, "running": 0, "failed": 0}
    for row in await db.fetch_all(query):
        counts[str(row["status"])] = int(row["n"])
    return counts
