"""Deleting and revoking are single statements: concurrent requests for the same row never error."""

from __future__ import annotations

import asyncio

from databases import Database

from quart_app.db import api_keys, transcriptions, translations, users


async def test_concurrent_revokes_and_deletes(db: Database) -> None:
    user = await users.create_user(db, email="race@example.test")
    key, _ = await api_keys.create_api_key(db, user.id)
    trn = await transcriptions.create(db, user_id=user.id, provider="deepgram", transcript="hello")
    trl = await translations.create(
        db,
        user_id=user.id,
        provider="openai",
        model="m",
        source_language=None,
        target_language="es",
        text="hi",
        translation="hola",
    )
    for call in (
        lambda: api_keys.revoke(db, user.id, key.id),
        lambda: transcriptions.delete_owned(db, user.id, trn.id),
        lambda: translations.delete_owned(db, user.id, trl.id),
    ):
        results = await asyncio.gather(*(call() for _ in range(6)))
        assert sorted(results) == [False] * 5 + [True]
    assert await api_keys.find_active_key(db, "usr_x") is None
    assert await transcriptions.get_owned(db, user.id, trn.id) is None


async def test_only_the_owner_can_delete(db: Database) -> None:
    owner = await users.create_user(db, email="owner@example.test")
    other = await users.create_user(db, email="other@example.test")
    trn = await transcriptions.create(db, user_id=owner.id, provider="openai", transcript="mine")
    assert await transcriptions.delete_owned(db, other.id, trn.id) is False
    assert await transcriptions.get_owned(db, owner.id, trn.id) is not None
