"""An API key's last_used_at is written on its first use and then at most once a minute per instance: the
write per request was the largest cost of an authenticated request on SQLite. Driven clock, no sleeping."""

from __future__ import annotations

import pytest
from databases import Database

from quart_app.auth.identity import TOUCH_EVERY_S, Authenticator, AuthError
from quart_app.auth.sessions import SessionTokens
from quart_app.db import api_keys, users
from quart_app.settings import Settings


class _Handle:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self) -> Database:
        return self.db


async def test_last_used_is_written_on_first_use_then_once_a_minute(db: Database) -> None:
    user = await users.create_user(db, email="toucher@example.test")
    record, key = await api_keys.create_api_key(db, user.id, name="laptop")
    other_record, other_key = await api_keys.create_api_key(db, user.id, name="phone")
    now = [1000.0]
    auth = Authenticator(
        Settings.from_env({}),
        _Handle(db),
        None,
        SessionTokens("x" * 32),
        clock=lambda: now[0],  # type: ignore[arg-type]
    )
    writes: list[str] = []
    original = api_keys.touch

    async def counting(database: Database, key_id: str) -> None:
        writes.append(key_id)
        await original(database, key_id)

    api_keys.touch = counting  # type: ignore[assignment]
    try:
        principal = await auth.authenticate(key)
        assert principal.api_key_id == record.id
        first = {k.id: k.last_used_at for k in await api_keys.list_keys(db, user.id)}
        assert first[record.id] is not None and first[other_record.id] is None

        for _ in range(5):
            now[0] += TOUCH_EVERY_S / 10
            await auth.authenticate(key)
        assert writes == [record.id]  # 5 more requests within the minute: no write

        await auth.authenticate(other_key)  # another key is its own first use
        assert writes == [record.id, other_record.id]

        now[0] += TOUCH_EVERY_S
        await auth.authenticate(key)
        assert writes == [record.id, other_record.id, record.id]
    finally:
        api_keys.touch = original  # type: ignore[assignment]


async def test_a_revoked_key_is_refused_at_once_whatever_the_touch_memory(db: Database) -> None:
    user = await users.create_user(db, email="revoker@example.test")
    record, key = await api_keys.create_api_key(db, user.id)
    auth = Authenticator(Settings.from_env({}), _Handle(db), None, SessionTokens("y" * 32))  # type: ignore[arg-type]
    assert (await auth.authenticate(key)).api_key_id == record.id
    assert await api_keys.revoke(db, user.id, record.id)
    with pytest.raises(AuthError) as refused:
        await auth.authenticate(key)
    assert refused.value.status == 401
