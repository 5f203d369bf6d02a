"""Building users, keys and PINs for tests through the real query functions."""

from __future__ import annotations

import secrets

from quart import Quart

from quart_app.auth.pins import hash_pin
from quart_app.db import api_keys, users
from quart_app.db.database import connect, open_database
from quart_app.db.users import User
from quart_app.settings import Settings


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.test"


async def make_user(
    app: Quart, *, role: str = "user", pin: str | None = None, email: str | None = None
) -> tuple[User, str]:
    """A user with one API key; returns (user, plaintext key)."""
    db = app.extensions["resources"].db()
    user = await users.create_user(
        db, email=email or unique_email(role), role=role, pin_hash=hash_pin(pin) if pin else None
    )
    _, key = await api_keys.create_api_key(db, user.id, "test")
    return user, key


async def admin_key_in(database_url: str) -> str:
    """An admin and its API key, written straight into a running server's (migrated) database: for a server in
    another process (e.g. to read `/health`'s detail, which only admins get)."""
    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        user = await users.create_user(db, email=unique_email("ops"), role="admin")
        _, key = await api_keys.create_api_key(db, user.id, "tests")
    finally:
        await db.disconnect()
    return key
