"""Transcriptions: text produced from uploaded audio, live streams or calls, owned by one user."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from ..providers.results import Segment
from .database import dialect, now
from .tables import transcriptions

__all__ = ["Segment", "Transcription"]


@dataclass(frozen=True)
class Transcription:
    id: str
    user_id: str
    provider: str
    model: str | None
    language: str | None
    transcript: str
    duration_s: float | None
    segments: list[Segment]
    source: str
    filename: str | None
    created_at: float

    def public(self, with_segments: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "transcript": self.transcript,
            "language": self.language,
            "duration_s": self.duration_s,
            "provider": self.provider,
            "model": self.model,
            "source": self.source,
            "filename": self.filename,
            "created_at": self.created_at,
        }
        if with_segments:
            body["segments"] = [s.__dict__ for s in self.segments]
        return body


def _row(row: Any) -> Transcription | None:
    if row is None:
        return None
    data = dict(row._mapping)
    data.pop("search", None)
    raw = data.pop("segments")
    segments = [Segment(**s) for s in json.loads(raw)] if raw else []
    return Transcription(segments=segments, **data)


async def create(
    db: Database,
    *,
    user_id: str,
    provider: str,
    transcript: str,
    model: str | None = None,
    language: str | None = None,
    duration_s: float | None = None,
    segments: list[Segment] | None = None,
    source: str = "upload",
    filename: str | None = None,
) -> Transcription:
    record = Transcription(
        id="trn_" + secrets.token_hex(10),
        user_id=user_id,
        provider=provider,
        model=model,
        language=language,
        transcript=transcript,
        duration_s=duration_s,
        segments=list(segments or []),
        source=source,
        filename=filename,
        created_at=now(),
    )
    values = {**record.__dict__, "segments": json.dumps([s.__dict__ for s in record.segments])}
    await db.execute(transcriptions.insert().values(**values))
    return record


async def get_owned(db: Database, user_id: str, transcription_id: str) -> Transcription | None:
    query = sa.select(transcriptions).where(
        transcriptions.c.id == transcription_id, transcriptions.c.user_id == user_id
    )
    return _row(await db.fetch_one(query))


async def list_owned(
    db: Database, user_id: str, *, limit: int, offset: int, search: str | None = None
) -> tuple[list[Transcription], int]:
    """A page of the user's transcriptions, newest first, and the total count (full-text filtered)."""
    where: list[sa.ColumnElement[bool] | sa.TextClause] = [transcriptions.c.user_id == user_id]
    if search:
        where.append(_matches(db, search))
    total = await db.fetch_val(sa.select(sa.func.count()).select_from(transcriptions).where(*where))
    query = (
        sa.select(transcriptions)
        .where(*where)
        .order_by(transcriptions.c.created_at.desc(), transcriptions.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = await db.fetch_all(query)
    return [t for t in (_row(r) for r in rows) if t is not None], int(total or 0)


def _matches(db: Database, search: str) -> sa.TextClause:
    if dialect(db) == "postgresql":
        return sa.text("search @@ plainto_tsquery('simple', :q)").bindparams(q=search)
    # FTS5 query syntax is powerful and easy to break; quote every word so user text is always literal.
    words = [w.replace('"', '""') for w in search.split() if w.strip()]
    fts_query = " ".join(f'"{w}"' for w in words) or '""'
    return sa.text(
        "transcriptions.rowid IN (SELECT rowid FROM transcriptions_fts WHERE transcriptions_fts MATCH :q)"
    ).bindparams(q=fts_query)


async def delete_owned(db: Database, user_id: str, transcription_id: str) -> bool:
    """Delete one of the user's rows in a single statement (safe under concurrent deletes on SQLite)."""
    query = (
        transcriptions.delete()
        .where(transcriptions.c.id == transcription_id, transcriptions.c.user_id == user_id)
        .returning(transcriptions.c.id)
    )
    return await db.fetch_one(query) is not None


async def update_stream_text(
    db: Database, transcription_id: str, *, transcript: str, segments: list[Segment], duration_s: float | None
) -> bool:
    """Replace a live stream's text so far (its finals, joined) and segments; False if the row is gone."""
    query = (
        transcriptions.update()
        .where(transcriptions.c.id == transcription_id)
        .values(transcript=transcript, segments=json.dumps([s.__dict__ for s in segments]), duration_s=duration_s)
        .returning(transcriptions.c.id)
    )
    return await db.fetch_one(query) is not None
