"""Idempotency keys: one row per (user, Idempotency-Key), from a claimed request to its stored answer.

A request claims its key by inserting the row with a random `token` (the unique key decides between
concurrent claimants); it later completes the row with its answer, in the same transaction that stores
and bills the result, or releases it when it fails. Every change after the claim is conditioned on the
token, so a claimant whose lease was taken over cannot overwrite the new owner's row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now
from .tables import idempotency_keys as keys

IN_PROGRESS, DONE = "in_progress", "done"


@dataclass(frozen=True)
class IdempotencyRecord:
    user_id: str
    idem_key: str
    fingerprint: str
    token: str
    state: str
    status_code: int | None
    response_body: str | None
    response_headers: str | None
    created_at: float
    updated_at: float

    @property
    def body(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    @property
    def headers(self) -> dict[str, str]:
        return dict(json.loads(self.response_headers)) if self.response_headers else {}


def _record(row: Any) -> IdempotencyRecord | None:
    return None if row is None else IdempotencyRecord(**dict(row._mapping))


async def get(db: Database, user_id: str, key: str) -> IdempotencyRecord | None:
    return _record(await db.fetch_one(sa.select(keys).where(keys.c.user_id == user_id, keys.c.idem_key == key)))


async def claim(db: Database, user_id: str, key: str, fingerprint: str, token: str) -> IdempotencyRecord:
    """Insert the row in progress unless one exists; returns the row as it now stands (ours if its token is)."""
    stamp = now()
    # ON CONFLICT DO NOTHING is the same in SQLite (3.24+) and PostgreSQL; the primary key arbitrates.
    await db.execute(
        "INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, token, state, created_at, updated_at) "
        "VALUES (:user_id, :idem_key, :fingerprint, :token, :state, :stamp, :stamp) "
        "ON CONFLICT (user_id, idem_key) DO NOTHING",
        {
            "user_id": user_id,
            "idem_key": key,
            "fingerprint": fingerprint,
            "token": token,
            "state": IN_PROGRESS,
            "stamp": stamp,
        },
    )
    record = await get(db, user_id, key)
    assert record is not None  # inserted, or another claimant's; rows are deleted only by token
    return record


async def take_over(db: Database, record: IdempotencyRecord, fingerprint: str, token: str) -> IdempotencyRecord | None:
    """Replace `record` (expired, or a claim whose owner went silent) with a fresh claim of ours.

    Returns the row as it now stands, or None if it disappeared meanwhile.
    """
    stamp = now()
    await db.execute(
        keys.update()
        .where(keys.c.user_id == record.user_id, keys.c.idem_key == record.idem_key, keys.c.token == record.token)
        .values(
            fingerprint=fingerprint,
            token=token,
            state=IN_PROGRESS,
            status_code=None,
            response_body=None,
            response_headers=None,
            created_at=stamp,
            updated_at=stamp,
        )
    )
    return await get(db, record.user_id, record.idem_key)


async def complete(
    db: Database,
    user_id: str,
    key: str,
    token: str,
    *,
    status_code: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    """Store the answer for replays; part of the caller's transaction (with the result and its bill)."""
    await db.execute(
        keys.update()
        .where(keys.c.user_id == user_id, keys.c.idem_key == key, keys.c.token == token)
        .values(
            state=DONE,
            status_code=status_code,
            response_body=json.dumps(body, separators=(",", ":")),
            response_headers=json.dumps(headers or {}),
            updated_at=now(),
        )
    )


async def release(db: Database, user_id: str, key: str, token: str) -> None:
    """Forget a claim whose request failed, so that the client's retry runs it again."""
    await db.execute(
        keys.delete().where(
            keys.c.user_id == user_id, keys.c.idem_key == key, keys.c.token == token, keys.c.state == IN_PROGRESS
        )
    )


async def sweep(db: Database, created_before: float) -> int:
    """Delete keys older than the replay window; returns how many went."""
    query = sa.select(sa.func.count()).select_from(keys).where(keys.c.created_at < created_before)
    count = int(await db.fetch_val(query) or 0)
    if count:
        await db.execute(keys.delete().where(keys.c.created_at < created_before))
    return count
