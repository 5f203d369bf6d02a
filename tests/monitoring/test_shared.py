"""The figures read from the shared database, on SQLite and PostgreSQL: usage by UTC day and service, usage
today, job counts and recent calls (callers masked)."""

from __future__ import annotations

import time

import sqlalchemy as sa
from databases import Database

from quart_app.db import calls, jobs, usage
from quart_app.db.tables import usage_logs
from quart_app.monitoring import shared

DAY = 86400.0


async def _usage(db: Database, service: str, at: float, cost: float, audio_s: float = 0.0) -> None:
    row = await usage.record(
        db,
        user_id="usr_x",
        service=service,
        endpoint="/x",
        request_id=None,
        duration_ms=5,
        cost_usd=cost,
        audio_seconds=audio_s or None,
    )
    await db.execute(usage_logs.update().where(usage_logs.c.id == row.id).values(created_at=at))


async def test_usage_by_day_and_today(db: Database) -> None:
    now = time.time()
    today = shared.day_start(now)
    await _usage(db, "transcription.deepgram", today + 60, 0.5, audio_s=120)
    await _usage(db, "transcription.deepgram", today + 120, 0.25, audio_s=60)
    await _usage(db, "translation.openai", today - DAY + 30, 0.01)  # yesterday, just after midnight
    await _usage(db, "translation.openai", today - 1, 0.02)  # yesterday, one second before midnight
    await _usage(db, "translation.openai", today - 20 * DAY, 9.0)  # outside the window

    by_day = await shared.usage_by_day(db, 3, now=now)
    assert len(by_day["days"]) == 3 and by_day["days"][-1] == time.strftime("%Y-%m-%d", time.gmtime(now))
    series = {s["service"]: s for s in by_day["services"]}
    assert series["transcription.deepgram"]["requests"] == [0, 0, 2]
    assert series["transcription.deepgram"]["audio_seconds"] == [0.0, 0.0, 180.0]
    assert series["translation.openai"]["requests"] == [0, 2, 0]
    assert round(sum(series["translation.openai"]["cost_usd"]), 6) == 0.03

    today_rows = {r["service"]: r for r in await shared.usage_today(db, now=now)}
    assert set(today_rows) == {"transcription.deepgram"}
    assert (
        today_rows["transcription.deepgram"]["requests"] == 2
        and today_rows["transcription.deepgram"]["cost_usd"] == 0.75
    )


async def test_job_counts_and_recent_calls(db: Database) -> None:
    for i in range(3):
        await jobs.create(
            db,
            job_id=f"job_{i}",
            user_id="usr_x",
            provider="deepgram",
            language=None,
            filename=None,
            media_path="/x",
            node="n",
        )
    await jobs.start_attempt(db, "job_1", "n")
    await jobs.fail(db, "job_2", "boom")
    assert await shared.job_counts(db) == {"queued": 1, "running": 1, "failed": 1}

    await calls.record_status(
        db, call_sid="CA1", status="completed", sequence=3, from_number="+15551234567", duration_s=61
    )
    await calls.record_status(db, call_sid="CA2", status="ringing", sequence=1, from_number=None)
    rows = await shared.recent_calls(db)
    assert [r["call_sid"] for r in rows] == ["CA2", "CA1"]
    assert rows[1]["caller"] == "+1••••••4567" and rows[1]["duration_s"] == 61 and rows[1]["status"] == "completed"
    assert "+15551234567" not in str(rows)
    assert await db.fetch_val(sa.select(sa.func.count()).select_from(usage_logs)) == 0
