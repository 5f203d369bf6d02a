"""The job runner: transcription jobs kept in the database, run by whichever instance claims them.

Intake (`POST /transcriptions/jobs`) extracts the upload's audio and stores it in the database in provider-sized
chunks (`job_audio.prepare_job_audio`, `db.jobs`); the upload's temporary directory under JOBS_DIR is removed
before the 202. The job's row is the queue: every instance's dispatcher claims queued jobs, or running ones whose
lease expired (their instance died), with `db.jobs.claim_next`, and renews the lease every third of JOB_LEASE_S
while it runs the job. A job is transcribed chunk by chunk; each chunk's result is saved in the transaction that
marks it done, so a takeover resumes from the finished chunks without sending them again. The transcript is
stitched from the chunk results and stored with its one usage row in the transaction that marks the job done,
which commits only for the lease holder: a second finisher rolls back, so a job is billed once.

A worker that finds its lease taken over stops at once, writing nothing. The drain stops claiming, lets running
jobs go on until shortly before the drain deadline, then hands them back to the queue (lease released) for
another instance; a job whose process is killed is taken over once its lease lapses. A job claimed more than
MAX_ATTEMPTS times without finishing (it keeps killing its process) fails.

Each user may have MAX_JOBS_PER_USER jobs queued or running, whose stored audio takes at most
MAX_JOB_BYTES_PER_USER bytes; `admit` checks both under a per-user lock as it records the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from databases import Database

from ..audio import formats
from ..billing import Billing
from ..db import idempotency as idempotency_store
from ..db import jobs as job_store
from ..db import transcriptions
from ..db.database import write_transaction
from ..db.handle import DatabaseHandle
from ..errors import APIError
from ..media import chunking
from ..providers.registry import Providers
from ..providers.results import AudioUpload, Transcriber, TranscriptResult
from ..settings import Settings
from .idempotency import WINDOW_S as IDEMPOTENCY_WINDOW_S
from .job_audio import PreparedAudio, prepare_job_audio, result_from_json, result_json
from .long_media import ChunkResult, media_deadlines, stitch

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # claims of one job that did not end it: a job that keeps killing its process fails
PARALLEL_JOBS = 2  # per process; each job already sends TRANSCRIBE_CONCURRENCY requests at once
SWEEP_EVERY_S = 600.0  # leftover intake directories and expired idempotency keys are removed this often
ORPHAN_AGE_S = 3600.0  # an intake directory no request is using is left alone this long
RELEASE_MARGIN_S = 1.0  # running jobs are handed back this long before the drain deadline
SOURCE_NAME = "source"
ENDPOINT = "/transcriptions/jobs"


class LeaseLost(Exception):
    """Another worker holds the job now: stop without writing anything."""


class HandBack(Exception):
    """The instance is draining: the job goes back to the queue after its chunks in flight."""


class JobRunner:
    """The jobs feature: started and stopped by `serving`; drain stops claiming and hands running jobs back."""

    name = "jobs"

    def __init__(self, settings: Settings, database: DatabaseHandle, providers: Providers, billing: Billing) -> None:
        self.settings = settings
        self.database = database
        self.providers = providers
        self.billing = billing
        self.root = Path(settings.jobs_dir).resolve()
        self.deadlines = media_deadlines(settings)
        self.lease_s = settings.job_lease_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._intake: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._background: list[asyncio.Task[None]] = []
        self.closing = False

    # ----- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._dispatch(), name="job-dispatcher"),
            loop.create_task(self._maintain(), name="job-maintenance"),
        ]

    async def drain(self, deadline: float) -> None:
        """Claim nothing more and start no new chunk; each running job goes back to the queue once its chunks in
        flight are saved, or at `deadline` (loop time) whatever it is doing."""
        self.closing = True
        self._poke()
        running = list(self._tasks.values())
        if running:
            remaining = deadline - asyncio.get_running_loop().time() - RELEASE_MARGIN_S
            await asyncio.wait(running, timeout=max(0.0, remaining))
        await self._hand_back()

    async def stop(self) -> None:
        """Hand back whatever still runs, and end the dispatcher and maintenance."""
        self.closing = True
        await self._hand_back()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _hand_back(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()  # each releases its lease as it ends (see _run)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ----- claiming ------------------------------------------------------------------------------------

    def owner_name(self) -> str:
        """Unique per claim: this instance, and a nonce so a read-back tells this claim from any other."""
        return f"{self.settings.instance_id}/{secrets.token_hex(6)}"

    async def _dispatch(self) -> None:
        while not await self.database.wait_ready(60):
            log.warning("jobs wait for the database before claiming")
        assert self._wake is not None
        while not self.closing:
            self._wake.clear()
            claimed = False
            if len(self._tasks) < PARALLEL_JOBS:
                try:
                    job = await job_store.claim_next(
                        self.database.get(), self.owner_name(), self.lease_s, exclude=list(self._tasks)
                    )
                except Exception as exc:  # the database blinking must not end the dispatcher
                    log.warning("claiming a job failed: %s", exc)
                    job = None
                if job is not None and not self.closing:
                    self._spawn(job)
                    claimed = True
                elif job is not None:
                    await job_store.release(self.database.get(), job.id, job.lease_owner or "")
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.job_poll_s):
                    await self._wake.wait()

    def submit(self, job_id: str) -> None:
        """A job was just admitted: look for work now rather than at the next poll."""
        self._poke()

    def _spawn(self, job: job_store.Job) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(job.id, None)
            self._lost.discard(job.id)
            self._poke()  # a slot is free

        task.add_done_callback(forget)

    async def _keep_lease(self, job_id: str, owner: str, worker: asyncio.Task[None]) -> None:
        """Renew the lease every third of it; if another worker holds the job now, stop ours."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = await job_store.renew(self.database.get(), job_id, owner, self.lease_s)
            except Exception as exc:  # keep trying: the lease outlives a short database outage
                log.warning("renewing the lease of job %s failed: %s", job_id, exc)
                continue
            if not held:
                log.warning("job %s was taken over by another worker; stopping here", job_id)
                self._lost.add(job_id)
                worker.cancel()
                return

    async def _run(self, job: job_store.Job) -> None:
        owner = job.lease_owner or ""
        db = self.database.get()
        current = asyncio.current_task()
        assert current is not None
        keeper = asyncio.get_running_loop().create_task(self._keep_lease(job.id, owner, current))
        try:
            if job.attempts > MAX_ATTEMPTS:
                raise APIError(
                    500, "too_many_attempts", f"Gave up after {MAX_ATTEMPTS} attempts interrupted by server failures."
                )
            log.info("running job %s (attempt %d) as %s", job.id, job.attempts, owner)
            await self._execute(db, job, owner)
        except asyncio.CancelledError:
            if job.id not in self._lost:
                # Drain deadline or shutdown: back to the queue for any instance. Shielded so a second cancel
                # cannot skip it.
                with contextlib.suppress(Exception):
                    await asyncio.shield(job_store.release(db, job.id, owner))
                log.info("job %s handed back to the queue", job.id)
            raise
        except HandBack:
            await self._quietly(job_store.release(db, job.id, owner))
            log.info("job %s handed back to the queue (draining)", job.id)
        except LeaseLost:
            log.warning("job %s is another worker's now; this one stopped", job.id)
        except APIError as exc:
            log.warning("job %s failed: %s %s", job.id, exc.code, exc.message)
            await self._quietly(job_store.fail(db, job.id, f"{exc.code}: {exc.message}", owner))
        except Exception:
            log.exception("job %s crashed", job.id)
            message = "internal_error: the transcription failed unexpectedly."
            await self._quietly(job_store.fail(db, job.id, message, owner))
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    @staticmethod
    async def _quietly(write: Awaitable[None]) -> None:
        """A job's last write; if the database is gone the lease lapses and another worker sees to the job."""
        try:
            await write
        except Exception as exc:
            log.warning("recording a job's outcome failed: %s", exc)

    # ----- running ------------------------------------------------------------------------------------

    async def _execute(self, db: Database, job: job_store.Job, owner: str) -> None:
        transcriber = self.providers.transcriber(job.provider)
        infos = await job_store.chunk_infos(db, job.id)
        if not infos:
            infos = await self._prepare_legacy(db, job, owner)
        total = len(infos)
        finished = sum(1 for c in infos if c.status == job_store.DONE)
        gate = asyncio.Semaphore(self.settings.transcribe_concurrency)
        started = time.perf_counter()

        async def one(info: job_store.ChunkInfo) -> None:
            nonlocal finished
            async with gate:
                if self.closing:
                    raise HandBack(job.id)  # draining: start no new chunk; those in flight finish and are kept
                audio = await job_store.chunk_audio(db, job.id, info.index)
                if audio is None:
                    raise LeaseLost(job.id)  # the job ended elsewhere and its chunks are gone
                result = await _transcribe_chunk(transcriber, audio, info, job.language)
                percent = min(99, int(100 * (finished + 1) / total))
                async with write_transaction(db):
                    saved = await job_store.save_chunk(db, job.id, info.index, owner, result_json(result), percent)
                if not saved:
                    raise LeaseLost(job.id)
                finished += 1

        pending = [c for c in infos if c.status != job_store.DONE]
        if pending:
            log.info("job %s: %d of %d chunks to transcribe", job.id, len(pending), total)
        try:
            async with asyncio.TaskGroup() as group:  # a failure cancels the siblings, and we wait for them
                for info in pending:
                    group.create_task(one(info))
        except BaseExceptionGroup as failures:
            raise _first_leaf(failures) from None

        infos = await job_store.chunk_infos(db, job.id)
        parts = [
            ChunkResult(
                chunking.Chunk(i.index, i.start_s, i.start_s + i.duration_s), result_from_json(i.result or "{}")
            )
            for i in infos
        ]
        if not parts or any(i.status != job_store.DONE for i in infos):
            raise LeaseLost(job.id)
        stitched = stitch(parts, model=parts[0].result.model)
        result = TranscriptResult(
            text=stitched.text,
            language=stitched.language or job.language,
            duration_s=job.audio_s or stitched.duration_s,
            model=stitched.model,
            segments=stitched.segments,
        )
        latency_ms = int((time.perf_counter() - started) * 1000)
        # The transcript, the bill and the job's end commit together, and only for the lease holder.
        charge = self.billing.transcription_charge(
            job.provider, endpoint=ENDPOINT, request_id=job.id, duration_ms=latency_ms, audio_seconds=result.duration_s
        )

        async def finish(db: Database, record: transcriptions.Transcription) -> None:
            if not await job_store.finish(db, job.id, record.id, owner):
                raise LeaseLost(job.id)  # rolls the transcript and its usage row back

        await self.billing.save_transcription(
            job.user_id, job.provider, result, charge, source="job", filename=job.filename, then=finish
        )
        log.info("job %s done: %.0fs of audio, %d chunks", job.id, result.duration_s or 0, total)

    async def _prepare_legacy(self, db: Database, job: job_store.Job, owner: str) -> list[job_store.ChunkInfo]:
        """A job accepted before its audio went to the database: chunk its upload now, if it is on this disk."""
        source = Path(job.media_path)
        if not job.media_path or not await asyncio.to_thread(source.is_file):
            raise APIError(
                500, "upload_lost", "The server restarted and the uploaded file was no longer there; please resubmit."
            )
        workdir = source.parent / "work"
        try:
            prepared = await self._prepare(source, workdir, job.provider)
            async with write_transaction(db):
                if not await job_store.holds(db, job.id, owner):
                    raise LeaseLost(job.id)
                await self._store_chunks(db, job.id, prepared)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        await asyncio.to_thread(shutil.rmtree, source.parent, True)
        return await job_store.chunk_infos(db, job.id)

    # ----- intake -------------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """Where the upload waits while it is being chunked (removed before the 202)."""
        return self.root / job_id

    def source_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SOURCE_NAME

    @contextlib.asynccontextmanager
    async def intake(self, job_id: str):  # type: ignore[no-untyped-def]
        """The upload's scratch directory for the length of the request; removed on the way out."""
        self._intake.add(job_id)
        try:
            yield self.job_dir(job_id)
        finally:
            self._intake.discard(job_id)
            await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), True)

    async def prepare(self, source: Path, provider: str) -> PreparedAudio:
        """The upload's audio in chunks for `provider` (files under its job directory). APIError for bad media."""
        return await self._prepare(source, source.parent / "work", provider)

    async def _prepare(self, source: Path, workdir: Path, provider: str) -> PreparedAudio:
        settings = self.settings
        return await prepare_job_audio(
            source,
            workdir,
            max_seconds=settings.max_media_minutes * 60.0,
            max_bytes=settings.openai_transcribe_max_bytes if provider == "openai" else None,
            chunk_s=settings.job_chunk_s,
            deadlines=self.deadlines,
        )

    async def check_quota(self, db: Database, user_id: str, incoming_bytes: int = 0) -> None:
        """429 `too_many_jobs` or `job_storage_exceeded` (413 if this job alone is over) for this user."""
        limit_jobs = self.settings.max_jobs_per_user
        limit_bytes = self.settings.max_job_bytes_per_user
        if incoming_bytes > limit_bytes:
            raise job_storage_exceeded(413, limit_bytes, 0)
        mine = await job_store.active_for_user(db, user_id)
        if len(mine) >= limit_jobs:
            raise APIError(
                429,
                "too_many_jobs",
                f"You already have {len(mine)} jobs queued or running (the limit is {limit_jobs}); "
                "wait for one to finish.",
                extra={"max_jobs": limit_jobs},
            )
        stored = await job_store.stored_bytes_for_user(db, user_id)
        if stored + incoming_bytes > limit_bytes:
            raise job_storage_exceeded(429, limit_bytes, stored)

    async def admit(
        self,
        *,
        job_id: str,
        user_id: str,
        provider: str,
        language: str | None,
        filename: str | None,
        audio: PreparedAudio,
        then: Callable[[Database, job_store.Job], Awaitable[None]] | None = None,
    ) -> job_store.Job:
        """Record a job and its chunks if the user's quota allows it (APIError 429/413 otherwise); `then` runs
        in the same transaction. Two uploads of one user take turns."""
        db = self.database.get()
        async with write_transaction(db):
            await job_store.lock_user(db, user_id)
            await self.check_quota(db, user_id, audio.size)
            job = await job_store.create(
                db,
                job_id=job_id,
                user_id=user_id,
                provider=provider,
                language=language,
                filename=filename,
                media_path="",
                node=self.settings.instance_id,
                audio_s=audio.duration_s,
                stored_bytes=audio.size,
            )
            await self._store_chunks(db, job_id, audio)
            if then is not None:
                await then(db, job)
        return job

    async def _store_chunks(self, db: Database, job_id: str, audio: PreparedAudio) -> None:
        for chunk in audio.chunks:
            data = await asyncio.to_thread(chunk.path.read_bytes)
            await job_store.add_chunk(db, job_id, chunk.index, chunk.start_s, chunk.duration_s, data)

    # ----- maintenance --------------------------------------------------------------------------------

    async def _maintain(self) -> None:
        while not await self.database.wait_ready(60):
            pass
        while True:
            try:
                await self.sweep(self.database.get())
            except Exception as exc:  # the database blinking must not end maintenance
                log.warning("job maintenance failed: %s", exc)
            await asyncio.sleep(SWEEP_EVERY_S)

    async def sweep(self, db: Database) -> None:
        """Remove intake directories no request is using, and idempotency keys past their window."""
        active = {j.id for j in await job_store.active(db)}
        await asyncio.to_thread(self._remove_leftover_dirs, active)
        expired = await idempotency_store.sweep(db, time.time() - IDEMPOTENCY_WINDOW_S)
        if expired:
            log.info("forgot %d expired idempotency keys", expired)

    def _remove_leftover_dirs(self, active: set[str]) -> None:
        for path in self.root.glob("job_*"):
            # An active job's directory: a job accepted by an older version, chunked when it is claimed.
            if path.name in self._intake or path.name in active or not path.is_dir():
                continue
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > ORPHAN_AGE_S:
                log.info("removing leftover job directory %s", path.name)
                shutil.rmtree(path, ignore_errors=True)


async def _transcribe_chunk(
    transcriber: Transcriber, audio: bytes, info: job_store.ChunkInfo, language: str | None
) -> TranscriptResult:
    """One chunk, retried once: providers drop single requests now and then; a second failure is the job's."""

    async def send() -> TranscriptResult:
        upload = AudioUpload(io.BytesIO(audio), len(audio), f"chunk-{info.index:05d}.ogg", formats.OGG, info.duration_s)
        try:
            return await transcriber.transcribe(upload, language)
        finally:
            upload.close()

    try:
        return await send()
    except APIError as exc:
        if exc.status in (400, 413):  # the audio itself was refused: sending it again cannot help
            raise
        log.warning(
            "chunk %d (%.1fs at %.1fs) failed (%s); retrying once", info.index, info.duration_s, info.start_s, exc.code
        )
        return await send()


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def job_storage_exceeded(status: int, limit_bytes: int, stored: int) -> APIError:
    return APIError(
        status,
        "job_storage_exceeded",
        f"Your queued jobs' audio would take more than {limit_bytes // (1024 * 1024)} MB"
        + ("; wait for one to finish." if status == 429 else "."),
        extra={"max_bytes": limit_bytes, "stored_bytes": stored},
    )
