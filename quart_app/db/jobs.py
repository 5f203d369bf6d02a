"""Transcription jobs: one row per accepted long-media upload, from queued to done or failed; the row is the queue.

A job's audio is in `job_chunks` (one row per provider-sized chunk, its result saved when transcribed). A
worker on any instance takes a job with `claim_next`: an UPDATE that succeeds only while nobody holds an
unexpired lease, then a read-back of `lease_owner`, which is unique per claim (instance id + a nonce), so
exactly one of several racing claimers sees its own name there, on SQLite and PostgreSQL alike. The owner
renews the lease (`renew`) while it runs the job; a job whose owner died is claimable again once its lease
expires, and resumes from its finished chunks.
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import dialect, now
from .tables import job_chunks as chunks
from .tables import transcription_jobs as jobs

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PENDING = "pending"  # a chunk not transcribed yet (then DONE)
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
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    audio_s: float | None = None
    stored_bytes: int = 0

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
    audio_s: float | None = None,
    stored_bytes: int = 0,
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
        audio_s=audio_s,
        stored_bytes=stored_bytes,
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
    """Mark an active job running on `node` without a lease, counting the attempt (tools and tests; workers use
    `claim_next`); None if it is no longer active."""
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
        .values(status=RUNNING, node=node, attempts=jobs.c.attempts + 1, updated_at=stamp, heartbeat_at=stamp)
    )
    job = await get(db, job_id)
    return job if job is not None and job.status == RUNNING else None


async def stored_bytes_for_user(db: Database, user_id: str) -> int:
    """Bytes of chunk audio the user's queued and running jobs keep in the database."""
    query = sa.select(sa.func.coalesce(sa.func.sum(jobs.c.stored_bytes), 0)).where(
        jobs.c.user_id == user_id, jobs.c.status.in_(ACTIVE)
    )
    return int(await db.fetch_val(query) or 0)


# ----- chunks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkInfo:
    index: int
    start_s: float
    duration_s: float
    status: str
    result: str | None  # JSON, once done


async def add_chunk(db: Database, job_id: str, index: int, start_s: float, duration_s: float, audio: bytes) -> None:
    await db.execute(
        chunks.insert().values(
            job_id=job_id,
            chunk_index=index,
            start_s=start_s,
            duration_s=duration_s,
            size=len(audio),
            audio=audio,
            status=PENDING,
            result=None,
            attempts=0,
            updated_at=now(),
        )
    )


async def chunk_infos(db: Database, job_id: str) -> list[ChunkInfo]:
    """Every chunk of the job in order, without its audio."""
    rows = await db.fetch_all(
        sa.select(chunks.c.chunk_index, chunks.c.start_s, chunks.c.duration_s, chunks.c.status, chunks.c.result)
        .where(chunks.c.job_id == job_id)
        .order_by(chunks.c.chunk_index)
    )
    return [ChunkInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]


async def chunk_audio(db: Database, job_id: str, index: int) -> bytes | None:
    """One chunk's audio, counting a delivery attempt."""
    where = sa.and_(chunks.c.job_id == job_id, chunks.c.chunk_index == index)
    await db.execute(chunks.update().where(where).values(attempts=chunks.c.attempts + 1, updated_at=now()))
    audio = await db.fetch_val(sa.select(chunks.c.audio).where(where))
    return None if audio is None else bytes(audio)


async def save_chunk(db: Database, job_id: str, index: int, owner: str, result: str, percent: int) -> bool:
    """Inside a write transaction: the chunk's result, marked done, while `owner` still holds the job's lease;
    False if it does not (the chunk stays pending for whoever holds it now)."""
    if not await holds(db, job_id, owner):
        return False
    stamp = now()
    await db.execute(
        chunks.update()
        .where(chunks.c.job_id == job_id, chunks.c.chunk_index == index, chunks.c.status == PENDING)
        .values(status=DONE, result=result, updated_at=stamp)
    )
    await db.execute(jobs.update().where(jobs.c.id == job_id).values(percent=percent, updated_at=stamp))
    return True


async def delete_chunks(db: Database, job_id: str) -> None:
    await db.execute(chunks.delete().where(chunks.c.job_id == job_id))


# ----- leases ---------------------------------------------------------------------------------------------------


def _claimable(stamp: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.status.in_(ACTIVE),
        sa.or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < stamp),
    )


async def claim_next(db: Database, owner: str, lease_s: float, *, exclude: list[str] | None = None) -> Job | None:
    """Take the oldest active job nobody holds (no lease, or an expired one) for `owner`, whose name must be
    unique to this claim; counts an attempt. None when there is none or others won every race."""
    stamp = now()
    query = sa.select(jobs.c.id).where(_claimable(stamp)).order_by(jobs.c.created_at).limit(5)
    for row in await db.fetch_all(query):
        job_id = row[0]
        if exclude and job_id in exclude:
            continue
        await db.execute(
            jobs.update()
            .where(jobs.c.id == job_id, _claimable(stamp))
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_expires_at=stamp + lease_s,
                node=owner,
                attempts=jobs.c.attempts + 1,
                updated_at=stamp,
                heartbeat_at=stamp,
            )
        )
        job = await get(db, job_id)
        if job is not None and job.lease_owner == owner and job.status == RUNNING:
            return job
    return None


async def holds(db: Database, job_id: str, owner: str) -> bool:
    """Whether `owner`'s lease on the job is still the job's (it may have expired and been taken over)."""
    found = await db.fetch_val(
        sa.select(jobs.c.id).where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
    )
    return found is not None


async def renew(db: Database, job_id: str, owner: str, lease_s: float) -> bool:
    """Extend `owner`'s lease; False when it is no longer the owner (nothing changed then)."""
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
        .values(lease_expires_at=stamp + lease_s, heartbeat_at=stamp)
    )
    return await holds(db, job_id, owner)


async def release(db: Database, job_id: str, owner: str) -> None:
    """Hand the job back to the queue (drain, shutdown): claimable at once; the attempt is not counted."""
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
        .values(
            status=QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            attempts=sa.case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
            updated_at=now(),
        )
    )


async def finish(db: Database, job_id: str, transcription_id: str, owner: str) -> bool:
    """Inside the write transaction that stores the transcript and its bill: mark the job done if `owner` still
    holds it. False otherwise (another finisher won, or the lease was lost): the caller rolls back, so a job
    is stored and billed once however many workers reach the end."""
    stamp = now()
    await db.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.status == RUNNING)
        .values(
            status=DONE,
            percent=100,
            transcription_id=transcription_id,
            error=None,
            lease_owner=None,
            lease_expires_at=None,
            stored_bytes=0,
            updated_at=stamp,
            heartbeat_at=stamp,
        )
    )
    done = await db.fetch_val(sa.select(jobs.c.transcription_id).where(jobs.c.id == job_id, jobs.c.status == DONE))
    if done != transcription_id:
        return False
    await delete_chunks(db, job_id)
    return True


async def fail(db: Database, job_id: str, error: str, owner: str | None = None) -> None:
    """Fail an active job (only if `owner` holds it, when given) and drop its chunks."""
    condition = [jobs.c.id == job_id, jobs.c.status.in_(ACTIVE)]
    if owner is not None:
        condition.append(jobs.c.lease_owner == owner)
    await db.execute(
        jobs.update()
        .where(*condition)
        .values(
            status=FAILED, error=error[:500], lease_owner=None, lease_expires_at=None, stored_bytes=0, updated_at=now()
        )
    )
    if await db.fetch_val(sa.select(jobs.c.status).where(jobs.c.id == job_id)) == FAILED:
        await delete_chunks(db, job_id)
