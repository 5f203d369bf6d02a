"""Calls: the latest known state of each phone call, fed by Twilio status callbacks and by the realtime relay.

Twilio's callbacks own `status`, `sequence` and `duration_s` (ordered by SequenceNumber); the relay owns the
m0006 columns (tenant, stream, start/end, end reason, token usage). Each writer only touches its own columns,
so they never overwrite each other whatever order they arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from .database import dialect, now
from .tables import calls


@dataclass(frozen=True)
class Call:
    call_sid: str
    account_sid: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    status: str
    sequence: int
    duration_s: int | None
    created_at: float
    updated_at: float
    tenant_id: str | None = None
    stream_sid: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    relay_status: str | None = None
    provider_sessions: int = 0
    responses: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


def _row(row: Any) -> Call | None:
    return None if row is None else Call(**dict(row._mapping))


async def record_status(
    db: Database,
    *,
    call_sid: str,
    status: str,
    sequence: int,
    account_sid: str | None = None,
    from_number: str | None = None,
    to_number: str | None = None,
    direction: str | None = None,
    duration_s: int | None = None,
) -> None:
    """Upsert the call; a callback older than the one already stored (by SequenceNumber) is ignored.

    Twilio does not guarantee callback order, so "ringing" may arrive after "in-progress".
    """
    stamp = now()
    values = {
        "call_sid": call_sid,
        "account_sid": account_sid,
        "from_number": from_number,
        "to_number": to_number,
        "direction": direction,
        "status": status,
        "sequence": sequence,
        "duration_s": duration_s,
        "created_at": stamp,
        "updated_at": stamp,
    }
    insert = (postgresql.insert if dialect(db) == "postgresql" else sqlite.insert)(calls).values(**values)
    update = {
        "status": insert.excluded.status,
        "sequence": insert.excluded.sequence,
        "duration_s": sa.func.coalesce(insert.excluded.duration_s, calls.c.duration_s),
        "from_number": sa.func.coalesce(calls.c.from_number, insert.excluded.from_number),
        "to_number": sa.func.coalesce(calls.c.to_number, insert.excluded.to_number),
        "direction": sa.func.coalesce(calls.c.direction, insert.excluded.direction),
        "account_sid": sa.func.coalesce(calls.c.account_sid, insert.excluded.account_sid),
        "updated_at": insert.excluded.updated_at,
    }
    await db.execute(
        insert.on_conflict_do_update(
            index_elements=[calls.c.call_sid], set_=update, where=calls.c.sequence < insert.excluded.sequence
        )
    )


async def get_call(db: Database, call_sid: str) -> Call | None:
    return _row(await db.fetch_one(sa.select(calls).where(calls.c.call_sid == call_sid)))


async def recent_calls(db: Database, limit: int = 50) -> list[Call]:
    rows = await db.fetch_all(sa.select(calls).order_by(calls.c.updated_at.desc()).limit(limit))
    return [c for c in (_row(r) for r in rows) if c is not None]


LIVE = "live"  # the status filter for calls whose media stream the relay holds now (relay_status "live", not ended)


async def list_calls(
    db: Database,
    *,
    tenant_id: str | None = None,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Call], int]:
    """One page of calls, most recently updated first, and how many match in all.

    `status` is Twilio's last reported status (`completed`, `in-progress`, ...) or `live`: the relay holds the
    call's stream now. `since` (inclusive) and `until` (exclusive) bound `created_at`, when the call was first
    known, in epoch seconds.
    """
    c = calls.c
    where: list[Any] = []
    if tenant_id is not None:
        where.append(c.tenant_id == tenant_id)
    if status == LIVE:
        where += [c.relay_status == LIVE, c.ended_at.is_(None)]
    elif status is not None:
        where.append(c.status == status)
    if since is not None:
        where.append(c.created_at >= since)
    if until is not None:
        where.append(c.created_at < until)
    condition = sa.and_(sa.true(), *where)
    total = await db.fetch_val(sa.select(sa.func.count()).select_from(calls).where(condition))
    rows = await db.fetch_all(
        sa.select(calls).where(condition).order_by(c.updated_at.desc(), c.call_sid.desc()).limit(limit).offset(offset)
    )
    return [call for call in (_row(r) for r in rows) if call is not None], int(total or 0)


# ----- the realtime relay's writes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one `response.done` (or a sum of them)."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


def _insert(db: Database) -> Any:
    return postgresql.insert if dialect(db) == "postgresql" else sqlite.insert


async def open_call(
    db: Database,
    *,
    call_sid: str,
    tenant_id: str | None,
    from_number: str | None,
    to_number: str | None,
    account_sid: str | None = None,
    direction: str | None = None,
    status: str = "in-progress",
) -> None:
    """Create the row when the call reaches the router (or the stream starts), or fill in the relay's columns.

    A row made here has sequence -1, so every Twilio status callback still applies over it.
    """
    stamp = now()
    values = {
        "call_sid": call_sid,
        "account_sid": account_sid,
        "from_number": from_number,
        "to_number": to_number,
        "direction": direction,
        "status": status,
        "sequence": -1,
        "created_at": stamp,
        "updated_at": stamp,
        "tenant_id": tenant_id,
    }
    insert = _insert(db)(calls).values(**values)
    update = {
        "tenant_id": sa.func.coalesce(insert.excluded.tenant_id, calls.c.tenant_id),
        "from_number": sa.func.coalesce(calls.c.from_number, insert.excluded.from_number),
        "to_number": sa.func.coalesce(calls.c.to_number, insert.excluded.to_number),
        "account_sid": sa.func.coalesce(calls.c.account_sid, insert.excluded.account_sid),
        "direction": sa.func.coalesce(calls.c.direction, insert.excluded.direction),
        "updated_at": insert.excluded.updated_at,
    }
    await db.execute(insert.on_conflict_do_update(index_elements=[calls.c.call_sid], set_=update))


async def relay_started(
    db: Database,
    *,
    call_sid: str,
    stream_sid: str,
    tenant_id: str | None,
    from_number: str | None,
    to_number: str | None,
    account_sid: str | None,
    started_at: float,
) -> None:
    """The media stream started: the row exists afterwards (even if the router could not write it)."""
    await open_call(
        db,
        call_sid=call_sid,
        tenant_id=tenant_id,
        from_number=from_number,
        to_number=to_number,
        account_sid=account_sid,
    )
    await db.execute(
        calls.update()
        .where(calls.c.call_sid == call_sid)
        .values(
            stream_sid=stream_sid,
            started_at=sa.func.coalesce(calls.c.started_at, started_at),
            relay_status="live",
            ended_at=None,
            end_reason=None,
            updated_at=now(),
        )
    )


async def provider_session_opened(db: Database, call_sid: str) -> None:
    await db.execute(
        calls.update()
        .where(calls.c.call_sid == call_sid)
        .values(provider_sessions=calls.c.provider_sessions + 1, updated_at=now())
    )


async def add_usage(db: Database, call_sid: str, usage: TokenUsage, responses: int = 1) -> None:
    """Add one response's tokens to the call (a single UPDATE: safe with several writers)."""
    c = calls.c
    await db.execute(
        calls.update()
        .where(c.call_sid == call_sid)
        .values(
            responses=c.responses + responses,
            input_tokens=c.input_tokens + usage.input_tokens,
            cached_tokens=c.cached_tokens + usage.cached_tokens,
            output_tokens=c.output_tokens + usage.output_tokens,
            audio_input_tokens=c.audio_input_tokens + usage.audio_input_tokens,
            audio_output_tokens=c.audio_output_tokens + usage.audio_output_tokens,
            updated_at=now(),
        )
    )


async def relay_ended(
    db: Database, call_sid: str, *, end_reason: str, ended_at: float, stream_sid: str | None = None
) -> None:
    """The stream ended. The duration is Twilio's when a callback brought one, else start to end. With
    `stream_sid`, only while that stream is still the call's latest (a call moved to another instance (#22) has
    a newer stream there, which the old instance's end must not mark ended)."""
    c = calls.c
    elapsed = sa.cast(sa.func.round(ended_at - c.started_at), sa.Integer)
    latest = c.call_sid == call_sid
    if stream_sid is not None:
        latest = latest & ((c.stream_sid == stream_sid) | c.stream_sid.is_(None))
    await db.execute(
        calls.update()
        .where(latest)
        .values(
            ended_at=ended_at,
            end_reason=end_reason,
            relay_status="ended",
            duration_s=sa.case((c.duration_s.is_(None) & c.started_at.is_not(None), elapsed), else_=c.duration_s),
            updated_at=now(),
        )
    )
