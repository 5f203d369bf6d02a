"""Building users, keys and PINs for tests through the real query functions."""

from __future__ import annotations

import secrets

from quart import Quart

from quart_app.auth.pins import hash_pin
from quart_app.db import api_keys, users
from quart_app.db.users import User


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
