"""Calls: the latest known state of each phone call, fed by Twilio status callbacks."""

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
