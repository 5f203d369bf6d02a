"""Jobs as a queue in the database: claims, leases, takeover, resumption and a single finish, on both backends."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from databases import Database

from quart_app.db import jobs as job_store
from quart_app.db.database import write_transaction
from quart_app.db.tables import job_chunks, transcription_jobs

LEASE_S = 30.0


async def _job(db: Database, chunks: int = 3, user: str = "usr_1") -> str:
    job_id = job_store.new_job_id()
    async with write_transaction(db):
        await job_store.create(
            db,
            job_id=job_id,
            user_id=user,
            provider="openai",
            language=None,
            filename="talk.ogg",
            media_path="",
            node="intake",
            audio_s=chunks * 10.0,
            stored_bytes=chunks * 4,
        )
        for index in range(chunks):
            await job_store.add_chunk(db, job_id, index, index * 10.0, 10.0, bytes([index]) * 4)
    return job_id


async def _expire(db: Database, job_id: str) -> None:
    """The owner stopped renewing and its lease ran out (the row says so; no waiting on a clock)."""
    await db.execute(transcription_jobs.update().where(transcription_jobs.c.id == job_id).values(lease_expires_at=1.0))


async def _save(db: Database, job_id: str, index: int, owner: str) -> bool:
    async with write_transaction(db):
        return await job_store.save_chunk(db, job_id, index, owner, f'{{"text":"part {index}"}}', 50)


async def _finish(db: Database, job_id: str, owner: str, transcription_id: str) -> bool:
    async with write_transaction(db):
        return await job_store.finish(db, job_id, transcription_id, owner)


async def test_a_held_job_is_not_claimed_until_its_lease_lapses(db: Database) -> None:
    job_id = await _job(db)
    first = await job_store.claim_next(db, "a/1", LEASE_S)
    assert first is not None and first.id == job_id and first.status == "running" and first.attempts == 1
    assert first.lease_expires_at is not None and first.lease_expires_at > first.updated_at
    assert await job_store.claim_next(db, "b/1", LEASE_S) is None
    assert await job_store.renew(db, job_id, "a/1", LEASE_S)

    await _expire(db, job_id)
    taken = await job_store.claim_next(db, "b/1", LEASE_S)
    assert taken is not None and taken.lease_owner == "b/1" and taken.attempts == 2
    # The old owner finds out and can write nothing any more.
    assert not await job_store.holds(db, job_id, "a/1")
    assert not await job_store.renew(db, job_id, "a/1", LEASE_S)
    assert not await _save(db, job_id, 0, "a/1")
    assert (await job_store.get(db, job_id)).lease_owner == "b/1"  # type: ignore[union-attr]


async def test_racing_claimers_get_the_job_once(db: Database) -> None:
    job_id = await _job(db)
    owners = [f"i{n}/x" for n in range(6)]
    claimed = await asyncio.gather(*(job_store.claim_next(db, owner, LEASE_S) for owner in owners))
    winners = [job for job in claimed if job is not None]
    assert len(winners) == 1 and winners[0].id == job_id
    row = await job_store.get(db, job_id)
    assert row is not None and row.lease_owner == winners[0].lease_owner and row.attempts == 1


async def test_takeover_resumes_from_the_finished_chunks(db: Database) -> None:
    job_id = await _job(db, chunks=3)
    await job_store.claim_next(db, "a/1", LEASE_S)
    assert await job_store.chunk_audio(db, job_id, 0) == b"\0" * 4
    assert await _save(db, job_id, 0, "a/1")
    await _expire(db, job_id)  # A died after its first chunk

    assert await job_store.claim_next(db, "b/1", LEASE_S) is not None
    infos = await job_store.chunk_infos(db, job_id)
    assert [(i.index, i.status) for i in infos] == [(0, "done"), (1, "pending"), (2, "pending")]
    assert infos[0].result == '{"text":"part 0"}' and infos[0].start_s == 0.0 and infos[2].start_s == 20.0
    # A second save of a finished chunk changes nothing.
    async with write_transaction(db):
        await job_store.save_chunk(db, job_id, 0, "b/1", '{"text":"again"}', 50)
    assert (await job_store.chunk_infos(db, job_id))[0].result == '{"text":"part 0"}'
    attempts = await db.fetch_val(
        sa.select(job_chunks.c.attempts).where(job_chunks.c.job_id == job_id, job_chunks.c.chunk_index == 0)
    )
    assert attempts == 1


async def test_only_the_lease_holder_finishes_and_the_chunks_go(db: Database) -> None:
    job_id = await _job(db, chunks=1)
    await job_store.claim_next(db, "a/1", LEASE_S)
    await _expire(db, job_id)
    await job_store.claim_next(db, "b/1", LEASE_S)
    assert await _save(db, job_id, 0, "b/1")

    assert not await _finish(db, job_id, "a/1", "trn_a")  # the caller rolls its transcript and bill back
    assert await _finish(db, job_id, "b/1", "trn_b")
    assert not await _finish(db, job_id, "b/1", "trn_b2")  # nobody finishes twice
    job = await job_store.get(db, job_id)
    assert job is not None and job.status == "done" and job.transcription_id == "trn_b" and job.lease_owner is None
    assert job.stored_bytes == 0 and await job_store.chunk_infos(db, job_id) == []


async def test_release_hands_the_job_back_at_once_without_counting_the_attempt(db: Database) -> None:
    job_id = await _job(db)
    await job_store.claim_next(db, "a/1", LEASE_S)
    await job_store.release(db, job_id, "a/1")
    job = await job_store.get(db, job_id)
    assert job is not None and job.status == "queued" and job.lease_owner is None and job.attempts == 0
    again = await job_store.claim_next(db, "b/1", LEASE_S)
    assert again is not None and again.attempts == 1
    await job_store.release(db, job_id, "a/1")  # not the owner: nothing happens
    assert (await job_store.get(db, job_id)).lease_owner == "b/1"  # type: ignore[union-attr]


async def test_stored_bytes_count_active_jobs_and_failing_frees_them(db: Database) -> None:
    first = await _job(db, chunks=2, user="usr_q")
    await _job(db, chunks=3, user="usr_q")
    assert await job_store.stored_bytes_for_user(db, "usr_q") == 20
    await job_store.fail(db, first, "provider_error: no")
    assert await job_store.stored_bytes_for_user(db, "usr_q") == 12
    assert await job_store.chunk_infos(db, first) == []
