"""write_transaction: concurrent read-then-write transactions all commit; a failure rolls back."""

from __future__ import annotations

import asyncio

import pytest
from databases import Database

from quart_app.db import transcriptions, users
from quart_app.db.database import write_transaction


async def test_concurrent_read_then_write_transactions_all_commit(db: Database) -> None:
    user = await users.create_user(db, email="writer@example.test")

    async def writer(i: int) -> None:
        async with write_transaction(db):
            await db.fetch_all("SELECT id FROM transcriptions")  # a read first: the SQLite snapshot trap
            await transcriptions.create(db, user_id=user.id, provider="deepgram", transcript=f"take {i}")
            await asyncio.sleep(0.005)

    async def failing() -> None:
        with pytest.raises(RuntimeError):
            async with write_transaction(db):
                await transcriptions.create(db, user_id=user.id, provider="deepgram", transcript="rolled back")
                raise RuntimeError("boom")

    await asyncio.gather(*(writer(i) for i in range(12)), failing())
    items, total = await transcriptions.list_owned(db, user.id, limit=100, offset=0)
    assert total == 12
    assert "rolled back" not in {t.transcript for t in items}
