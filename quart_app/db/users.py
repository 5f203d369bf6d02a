"""Users: people who sign in by Auth0 token, API key or PIN."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now
from .tables import users

ROLES = ("user", "admin")


@dataclass(frozen=True)
class User:
    id: str
    email: str | None
    auth0_sub: str | None
    name: str | None
    role: str
    pin_hash: str | None
    created_at: float
    updated_at: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "has_pin": self.pin_hash is not None,
            "created_at": self.created_at,
        }


def _row(row: Any) -> User | None:
    return None if row is None else User(**dict(row._mapping))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def new_user_id() -> str:
    return "usr_" + secrets.token_hex(8)


async def create_user(
    db: Database,
    *,
    email: str | None = None,
    auth0_sub: str | None = None,
    name: str | None = None,
    role: str = "user",
    pin_hash: str | None = None,
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    stamp = now()
    email = normalize_email(email) if email else None
    user = User(new_user_id(), email, auth0_sub, name, role, pin_hash, stamp, stamp)
    await db.execute(users.insert().values(**user.__dict__))
    return user


async def get_user(db: Database, user_id: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.id == user_id)))


async def get_user_by_email(db: Database, email: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.email == normalize_email(email))))


async def get_user_by_sub(db: Database, sub: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.auth0_sub == sub)))


async def set_pin_hash(db: Database, user_id: str, pin_hash: str | None) -> None:
    await db.execute(users.update().where(users.c.id == user_id).values(pin_hash=pin_hash, updated_at=now()))


async def set_role(db: Database, user_id: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    await db.execute(users.update().where(users.c.id == user_id).values(role=role, updated_at=now()))


async def count_users(db: Database) -> int:
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(users)))
