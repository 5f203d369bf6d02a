"""API keys: shown once at creation, stored only as a SHA-256 hash.

Keys carry 192 random bits, so a fast hash is enough (no KDF needed, unlike PINs) and lookups stay O(1).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now
from .tables import api_keys


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    key_hash: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(user_id: str) -> str:
    """`usr_<user>_<random>`: the user part makes a leaked key traceable without a lookup."""
    user_part = user_id.removeprefix("usr_")
    return f"usr_{user_part}_{secrets.token_hex(24)}"


def _row(row: Any) -> ApiKey | None:
    return None if row is None else ApiKey(**dict(row._mapping))


async def create_api_key(db: Database, user_id: str, name: str = "default") -> tuple[ApiKey, str]:
    """Create a key; returns the record and the plaintext key, which is never retrievable again."""
    plaintext = generate_key(user_id)
    record = ApiKey(
        id="key_" + secrets.token_hex(8),
        user_id=user_id,
        name=name,
        prefix=plaintext[: len("usr_") + 20],
        key_hash=hash_key(plaintext),
        created_at=now(),
        last_used_at=None,
        revoked_at=None,
    )
    await db.execute(api_keys.insert().values(**record.__dict__))
    return record, plaintext


async def find_active_key(db: Database, plaintext: str) -> ApiKey | None:
    query = sa.select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext), api_keys.c.revoked_at.is_(None))
    return _row(await db.fetch_one(query))


async def touch(db: Database, key_id: str) -> None:
    await db.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=now()))


async def list_keys(db: Database, user_id: str) -> list[ApiKey]:
    query = sa.select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at.desc())
    return [k for k in (_row(r) for r in await db.fetch_all(query)) if k is not None]


async def revoke(db: Database, user_id: str, key_id: str) -> bool:
    """Revoke one of the user's own keys. False when there is no such active key for this user.

    One statement with RETURNING: a read-then-write transaction deadlocks two concurrent revokes on SQLite.
    """
    query = (
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now())
        .returning(api_keys.c.id)
    )
    return await db.fetch_one(query) is not None
