"""Users: people who sign in by Auth0 token, API key or PIN."""

from __future__ import annotations

import re
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
    phone: str | None = None  # E.164 (+15551234567): a caller is found by the number they call from

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


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_phone(phone: str) -> str:
    """E.164 from what people type ("+1 (555) 123-4567" → "+15551234567"); ValueError when it is not one."""
    compact = re.sub(r"[\s().\-]", "", phone.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.match(compact):
        raise ValueError("phone must be an E.164 number such as +15551234567")
    return compact


def looks_like_phone(identifier: str) -> bool:
    try:
        normalize_phone(identifier)
    except ValueError:
        return False
    return "@" not in identifier


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
    phone: str | None = None,
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    stamp = now()
    email = normalize_email(email) if email else None
    phone = normalize_phone(phone) if phone else None
    user = User(new_user_id(), email, auth0_sub, name, role, pin_hash, stamp, stamp, phone)
    await db.execute(users.insert().values(**user.__dict__))
    return user


async def get_user(db: Database, user_id: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.id == user_id)))


async def get_user_by_email(db: Database, email: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.email == normalize_email(email))))


async def find_users_by_email(db: Database, email: str) -> list[User]:
    """Every user whose e-mail matches ignoring case (rows written before e-mails were normalized may differ)."""
    query = sa.select(users).where(sa.func.lower(users.c.email) == normalize_email(email)).order_by(users.c.created_at)
    return [u for u in (_row(r) for r in await db.fetch_all(query)) if u is not None]


async def get_user_by_phone(db: Database, phone: str) -> User | None:
    """The user with this phone number (any common spelling of it); None when unknown or not a number."""
    try:
        number = normalize_phone(phone)
    except ValueError:
        return None
    return _row(await db.fetch_one(sa.select(users).where(users.c.phone == number)))


async def set_phone(db: Database, user_id: str, phone: str | None) -> None:
    """Set (normalised to E.164) or clear a user's phone number; ValueError for a malformed number."""
    number = normalize_phone(phone) if phone else None
    await db.execute(users.update().where(users.c.id == user_id).values(phone=number, updated_at=now()))


async def get_user_by_sub(db: Database, sub: str) -> User | None:
    return _row(await db.fetch_one(sa.select(users).where(users.c.auth0_sub == sub)))


async def link_auth0_sub(db: Database, user_id: str, sub: str) -> User | None:
    """Attach an Auth0 identity to a user that has none yet; None if it got one meanwhile (or is gone).

    One statement with RETURNING, so two identities racing for the same account cannot both win.
    """
    query = (
        users.update()
        .where(users.c.id == user_id, users.c.auth0_sub.is_(None))
        .values(auth0_sub=sub, updated_at=now())
        .returning(*users.c)
    )
    return _row(await db.fetch_one(query))


async def set_pin_hash(db: Database, user_id: str, pin_hash: str | None) -> None:
    await db.execute(users.update().where(users.c.id == user_id).values(pin_hash=pin_hash, updated_at=now()))


async def replace_pin_hash(db: Database, user_id: str, expected: str | None, pin_hash: str | None) -> bool:
    """Store (or clear) the PIN hash only if the stored one is still `expected`: a compare-and-set, so a
    change checked against the current PIN cannot overwrite a concurrent change. False when nothing changed."""
    current = users.c.pin_hash.is_(None) if expected is None else users.c.pin_hash == expected
    query = (
        users.update()
        .where(users.c.id == user_id, current)
        .values(pin_hash=pin_hash, updated_at=now())
        .returning(users.c.id)
    )
    return await db.fetch_one(query) is not None


async def set_role(db: Database, user_id: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    await db.execute(users.update().where(users.c.id == user_id).values(role=role, updated_at=now()))


async def count_users(db: Database) -> int:
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(users)))
