"""Translations: text in, text out, owned by one user."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now
from .tables import translations


@dataclass(frozen=True)
class Translation:
    id: str
    user_id: str
    provider: str
    model: str | None
    source_language: str | None
    target_language: str
    text: str
    translation: str
    created_at: float

    def public(self) -> dict[str, Any]:
        body = dict(self.__dict__)
        body.pop("user_id")
        return body


def _row(row: Any) -> Translation | None:
    return None if row is None else Translation(**dict(row._mapping))


async def create(
    db: Database,
    *,
    user_id: str,
    provider: str,
    model: str | None,
    source_language: str | None,
    target_language: str,
    text: str,
    translation: str,
) -> Translation:
    record = Translation(
        id="trl_" + secrets.token_hex(10),
        user_id=user_id,
        provider=provider,
        model=model,
        source_language=source_language,
        target_language=target_language,
        text=text,
        translation=translation,
        created_at=now(),
    )
    await db.execute(translations.insert().values(**record.__dict__))
    return record


async def get_owned(db: Database, user_id: str, translation_id: str) -> Translation | None:
    query = sa.select(translations).where(translations.c.id == translation_id, translations.c.user_id == user_id)
    return _row(await db.fetch_one(query))


async def list_owned(db: Database, user_id: str, *, limit: int, offset: int) -> tuple[list[Translation], int]:
    where = translations.c.user_id == user_id
    total = await db.fetch_val(sa.select(sa.func.count()).select_from(translations).where(where))
    query = (
        sa.select(translations)
        .where(where)
        .order_by(translations.c.created_at.desc(), translations.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [t for t in (_row(r) for r in await db.fetch_all(query)) if t is not None], int(total or 0)


async def delete_owned(db: Database, user_id: str, translation_id: str) -> bool:
    """Delete one of the user's rows in a single statement (safe under concurrent deletes on SQLite)."""
    query = (
        translations.delete()
        .where(translations.c.id == translation_id, translations.c.user_id == user_id)
        .returning(translations.c.id)
    )
    return await db.fetch_one(query) is not None
