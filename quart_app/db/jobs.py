"""Transcription jobs: one row per accepted long-media upload, from queued to done or failed."""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import dialect, now
from .tables import transcription_jobs as jobs

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
# First key of the per-user advisory locks that serialise job admission on PostgreSQL ("jobs").
_PG_USER_LOCK_SPACE = 0x6A6F6273


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    provider: str
    language: str | None
    filename: str | None
    media_path: str
    node: str
    status: str
    percent: int
    error: str | None
    transcription_id: str | None
    attempts: int
    created_at: float
    updated_at: float
    heartbeat_at: float

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "percent": self.percent,
            "provider": self.provider,
            "language": self.language,
            "filename": self.filename,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.status == FAILED:
            body["error"] = self.error
        if self.status == DONE:
            body["transcription_id"] = self.transcription_id
        return body


def new_job_id() -> str:
    return "job_" + secrets.token_hex(10)


def _job(row: Any) -> Job | None:
    return None if row is None else Job(**dict(row._mapping))


async def create(
    db: Database,
    *,
    job_id: str,
    user_id: str,
    provider: str,
    language: str | None,
    filename: str | None,
    media_path: str,
    node: str,
) -> Job:
    stamp = now()
    job = Job(
        id=job_id,
        user_id=user_id,
        provider=provider,
        language=language,
        filename=filename,
        media_path=media_path,
        node=node,
        status=QUEUED,
        percent=0,
        error=None,
        transcription_id=None,
        attempts=0,
        created_at=stamp,
        updated_at=stamp,
        heartbeat_at=stamp,
    )
    await db.execute(jobs.insert().values(**job.__dict__))
    return job


async def get(db: Database, job_id: str) -> Job | None:
    return _job(await db.fetch_one(sa.select(jobs).where(jobs.c.id == job_id)))


async def get_owned(db: Database, user_id: str, job_id: str) -> Job | None:
    return _job(await db.fetch_one(sa.select(jobs).where(jobs.c.id == job_id, jobs.c.user_id == user_id)))


async def active(db: Database) -> list[Job]:
    rows = await db.fetch_all(sa.select(jobs).where(jobs.c.status.in_(ACTIVE)).order_by(jobs.c.created_at))
    return [j for j in (_job(r) for r in rows) if j is not None]


async def active_for_user(db: Database, user_id: str) -> list[Job]:
    """The user's queued and running jobs."""
    rows = await db.fetch_all(sa.select(jobs).where(jobs.c.user_id == user_id, jobs.c.status.in_(ACTIVE)))
    return [j for j in (_job(r) for r in rows) if j is not None]


async def lock_user(db: Database, user_id: str) -> None:
    """Inside a write transaction: admissions of one user take turns, so two uploads cannot both pass a
    quota check. SQLite's BEGIN IMMEDIATE already serialises every writer; PostgreSQL takes an advisory
    transaction lock on the user (released at commit or rollback)."""
    if dialect(db) == "postgresql":
        key = zlib.crc32(user_id.encode()) - 2**31  # into int4's range
        await db.execute("SELECT pg_advisory_xact_lock(:space, :key)", {"space": _PG_USER_LOCK_SPACE, "key": key})


async def start_attempt(db: Database, job_id: str, node: str) -> Job | None:
    """Mark an active job running on `node`, counting the attempt; None if it is no longer active."""
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
        .values(
            status=RUNNING, node=node, percent=0, attempts=jobs.c.attempts + 1, updated_at=stamp, heartbeat_at=stamp
        )
    )
    job = await get(db, job_id)
    return job if job is not None and job.status == RUNNING else None


async def set_progress(db: Database, job_id: str, percent: int) -> None:
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status == RUNNING)
        .values(percent=percent, updated_at=stamp, heartbeat_at=stamp)
    )


async def requeue(db: Database, job_id: str) -> None:
    """Back to queued (shutdown interrupted it); the next start resumes it."""
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
        .values(status=QUEUED, percent=0, updated_at=now())
    )


async def finish(db: Database, job_id: str, transcription_id: str) -> None:
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(
            status=DONE,
            percent=100,
            transcription_id=transcription_id,
            error=None,
            updated_at=stamp,
            heartbeat_at=stamp,
        )
    )


async def fail(db: Database, job_id: str, error: str) -> None:
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
        .values(status=FAILED, error=error[:500], updated_at=now())
    )


async def heartbeat(db: Database, job_ids: list[str]) -> None:
    if job_ids:
        await db.execute(
            jobs.update().where(jobs.c.id.in_(job_ids), jobs.c.status.in_(ACTIVE)).values(heartbeat_at=now())
        )


async def fail_stale(db: Database, older_than: float, keep: list[str]) -> list[str]:
    """Fail active jobs nobody has vouched for since `older_than` (their instance is gone); returns their ids."""
    query = sa.select(jobs.c.id).where(jobs.c.status.in_(ACTIVE), jobs.c.heartbeat_at < older_than)
    stale = [row[0] for row in await db.fetch_all(query) if row[0] not in keep]
    for job_id in stale:
        # Re-checked in the UPDATE: a heartbeat that landed since the SELECT keeps the job alive.
        await db.execute(
            jobs.update()
            .where(
                jobs.c.id == job_id,
                jobs.c.status.in_(ACTIVE),
                jobs.c.heartbeat_at < older_than,
            )
            .values(
                status=FAILED,
                updated_at=now(),
                error="The server processing this job stopped and did not come back to finish it.",
            )
        )
    return stale
