"""Usage logs: one row per successful billable call, aggregated per month for billing."""

from __future__ import annotations

import calendar
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now
from .tables import usage_logs


@dataclass(frozen=True)
class UsageRecord:
    id: str
    user_id: str
    service: str
    endpoint: str
    request_id: str | None
    duration_ms: int
    audio_seconds: float | None
    characters: int | None
    cost_usd: float
    created_at: float


async def record(
    db: Database,
    *,
    user_id: str,
    service: str,
    endpoint: str,
    request_id: str | None,
    duration_ms: int,
    cost_usd: float,
    audio_seconds: float | None = None,
    characters: int | None = None,
) -> UsageRecord:
    row = UsageRecord(
        id="use_" + secrets.token_hex(10),
        user_id=user_id,
        service=service,
        endpoint=endpoint,
        request_id=request_id,
        duration_ms=duration_ms,
        audio_seconds=audio_seconds,
        characters=characters,
        cost_usd=round(cost_usd, 8),
        created_at=now(),
    )
    await db.execute(usage_logs.insert().values(**row.__dict__))
    return row


def month_bounds(month: str) -> tuple[float, float]:
    """UNIX-second bounds [start, end) of a YYYY-MM month in UTC; ValueError when malformed."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError("month must look like YYYY-MM") from None
    days = calendar.monthrange(start.year, start.month)[1]
    end = start.timestamp() + days * 86400
    return start.timestamp(), end


async def monthly_summary(db: Database, user_id: str, month: str) -> dict[str, Any]:
    start, end = month_bounds(month)
    query = (
        sa.select(
            usage_logs.c.service,
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(usage_logs.c.audio_seconds), 0.0).label("audio_seconds"),
            sa.func.coalesce(sa.func.sum(usage_logs.c.characters), 0).label("characters"),
            sa.func.coalesce(sa.func.sum(usage_logs.c.cost_usd), 0.0).label("cost_usd"),
            sa.func.coalesce(sa.func.sum(usage_logs.c.duration_ms), 0).label("duration_ms"),
        )
        .where(usage_logs.c.user_id == user_id, usage_logs.c.created_at >= start, usage_logs.c.created_at < end)
        .group_by(usage_logs.c.service)
        .order_by(usage_logs.c.service)
    )
    services = []
    for row in await db.fetch_all(query):
        services.append(
            {
                "service": row["service"],
                "requests": int(row["requests"]),
                "audio_seconds": round(float(row["audio_seconds"]), 3),
                "characters": int(row["characters"]),
                "cost_usd": round(float(row["cost_usd"]), 6),
                "duration_ms": int(row["duration_ms"]),
            }
        )
    return {
        "month": month,
        "services": services,
        "total_cost_usd": round(sum(s["cost_usd"] for s in services), 6),
        "total_requests": sum(s["requests"] for s in services),
    }
