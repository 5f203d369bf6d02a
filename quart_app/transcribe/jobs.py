"""The process's job runner: transcription jobs as background tasks that outlive the request.

Ownership of a job on this machine is an exclusive `flock` on `<JOBS_DIR>/<id>/.lock`, held while a task
of this process has the job. The kernel drops it when the process dies, however it dies, so a restarted
server (or a sibling worker) can tell a dead owner's job from a live one's without waiting for a timeout.
Jobs whose upload is on another machine are vouched for by heartbeats; one silent for STALE_S fails.
A job cannot hang while its heartbeat keeps it "running": every ffprobe/ffmpeg run has a deadline and the
whole pipeline another (see `long_media.transcribe_media`); a job past them fails with the reason.

Each user may have MAX_JOBS_PER_USER jobs queued or running, whose uploads take at most
MAX_JOB_BYTES_PER_USER bytes on disk; `admit` checks both under a per-user lock as it records the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from databases import Database

from ..billing import Billing
from ..db import idempotency as idempotency_store
from ..db import jobs as job_store
from ..db import transcriptions
from ..db.database import write_transaction
from ..db.handle import DatabaseHandle
from ..errors import APIError
from ..providers.registry import Providers
from ..settings import Settings
from .idempotency import WINDOW_S as IDEMPOTENCY_WINDOW_S
from .long_media import media_deadlines, transcribe_media

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_S = 120.0
MAX_ATTEMPTS = 3  # a job that keeps killing its process is failed instead of resumed forever
PARALLEL_JOBS = 2  # per process; each job already sends TRANSCRIBE_CONCURRENCY requests at once
PROGRESS_EVERY_S = 0.5
SWEEP_EVERY_S = 600.0  # orphaned upload directories and expired idempotency keys are removed this often
ORPHAN_AGE_S = 3600.0  # a directory without an active job is left alone this long (an upload may be arriving)
SOURCE_NAME = "source"
ENDPOINT = "/transcriptions/jobs"


class JobRunner:
    """The jobs feature: started and stopped by `serving`; drain stops intake, stop requeues running jobs."""

    name = "jobs"

    def __init__(self, settings: Settings, database: DatabaseHandle, providers: Providers, billing: Billing) -> None:
        self.settings = settings
        self.database = database
        self.providers = providers
        self.billing = billing
        self.root = Path(settings.jobs_dir).resolve()
        self.deadlines = media_deadlines(settings)
        self.node = f"{socket.gethostname()}:{self.root}"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, int] = {}
        self._percent: dict[str, int] = {}
        self._slots = asyncio.Semaphore(PARALLEL_JOBS)
        self._maintenance: asyncio.Task[None] | None = None
        self.closing = False

    # ----- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        self._maintenance = asyncio.get_running_loop().create_task(self._maintain(), name="job-maintenance")

    async def drain(self, deadline: float) -> None:
        """Take no new jobs; running ones go back to the queue at `stop`, for this or another instance."""
        self.closing = True

    async def stop(self) -> None:
        """Cancel every job: each goes back to `queued` with its upload kept, for the next start."""
        self.closing = True
        tasks = list(self._tasks.values())
        if self._maintenance is not None:
            tasks.append(self._maintenance)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job_id in list(self._locks):
            self._unlock(job_id)

    async def _maintain(self) -> None:
        while not await self.database.wait_ready(60):
            log.warning("jobs wait for the database before resuming")
        await self.recover()
        swept = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                db = self.database.get()
                await job_store.heartbeat(db, list(self._tasks))
                failed = await job_store.fail_stale(db, time.time() - STALE_S, keep=list(self._tasks))
                if failed:
                    log.warning("failed %d abandoned jobs: %s", len(failed), failed)
                if time.monotonic() - swept >= SWEEP_EVERY_S:
                    swept = time.monotonic()
                    await self.sweep(db)
            except Exception as exc:  # the database blinking must not end maintenance
                log.warning("job maintenance failed: %s", exc)

    async def sweep(self, db: Database) -> None:
        """Remove upload directories no active job owns, and idempotency keys past their window."""
        active = {j.id for j in await job_store.active(db)}
        await asyncio.to_thread(self._remove_finished_dirs, active)
        expired = await idempotency_store.sweep(db, time.time() - IDEMPOTENCY_WINDOW_S)
        if expired:
            log.info("forgot %d expired idempotency keys", expired)

    async def recover(self) -> None:
        """Resume queued/running jobs whose upload is here and unowned; fail ours whose upload is gone."""
        db = self.database.get()
        for job in await job_store.active(db):
            if job.id in self._tasks:
                continue
            if await asyncio.to_thread(Path(job.media_path).is_file):
                if self._lock(job.id):
                    log.info("resuming job %s (%s, attempt %d)", job.id, job.status, job.attempts + 1)
                    self._spawn(job.id)
            elif job.node == self.node:
                log.warning("job %s lost its upload; marking it failed", job.id)
                await job_store.fail(db, job.id, "The server restarted and the uploaded file was no longer there.")
        await asyncio.to_thread(self._remove_finished_dirs, {j.id for j in await job_store.active(db)})

    # ----- paths and ownership ----------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def source_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SOURCE_NAME

    def _lock(self, job_id: str) -> bool:
        if job_id in self._locks:
            return False
        fd = os.open(self.job_dir(job_id) / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._locks[job_id] = fd
        return True

    def _unlock(self, job_id: str) -> None:
        fd = self._locks.pop(job_id, None)
        if fd is not None:
            os.close(fd)

    def _remove_finished_dirs(self, active: set[str]) -> None:
        """Directories of jobs that ended (or were never recorded) and that nobody holds."""
        for path in self.root.glob("job_*"):
            if path.name in active or path.name in self._locks or not path.is_dir():
                continue
            # An upload still being copied in has no row yet: leave recent directories alone.
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > ORPHAN_AGE_S:
                log.info("removing orphaned job directory %s", path.name)
                shutil.rmtree(path, ignore_errors=True)

    # ----- admission ----------------------------------------------------------------------------------

    def _stored_bytes(self, jobs: list[job_store.Job]) -> int:
        """Bytes of these jobs' uploads on this machine's disk (a stat each: at most MAX_JOBS_PER_USER)."""
        total = 0
        for job in jobs:
            try:
                total += Path(job.media_path).stat().st_size
            except OSError:
                continue
        return total

    async def check_quota(self, db: Database, user_id: str, incoming_bytes: int = 0) -> None:
        """429 `too_many_jobs` or `job_storage_exceeded` (413 if the upload alone is over) for this user."""
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
        stored = await asyncio.to_thread(self._stored_bytes, mine)
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
        size: int,
        then: Callable[[Database, job_store.Job], Awaitable[None]] | None = None,
    ) -> job_store.Job:
        """Record a job whose upload is at `source_path(job_id)`, if the user's quota allows it (APIError
        429/413 otherwise); `then` runs in the same transaction. Two uploads of one user take turns."""
        db = self.database.get()
        async with write_transaction(db):
            await job_store.lock_user(db, user_id)
            await self.check_quota(db, user_id, size)
            job = await job_store.create(
                db,
                job_id=job_id,
                user_id=user_id,
                provider=provider,
                language=language,
                filename=filename,
                media_path=str(self.source_path(job_id)),
                node=self.node,
            )
            if then is not None:
                await then(db, job)
        return job

    # ----- running ------------------------------------------------------------------------------------

    def submit(self, job_id: str) -> None:
        """Start a job whose row is committed and whose upload is at `source_path(job_id)`."""
        if not self._lock(job_id):
            raise RuntimeError(f"job {job_id} is already owned")
        self._spawn(job_id)

    def _spawn(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(job_id, None)
            self._percent.pop(job_id, None)
            self._unlock(job_id)

        task.add_done_callback(forget)

    async def _run(self, job_id: str) -> None:
        db = self.database.get()
        async with self._slots:
            job = await job_store.start_attempt(db, job_id, self.node)
            if job is None:
                return
            try:
                if job.attempts > MAX_ATTEMPTS:
                    raise APIError(
                        500,
                        "too_many_attempts",
                        f"Gave up after {MAX_ATTEMPTS} attempts interrupted by server restarts.",
                    )
                await self._execute(db, job)
            except asyncio.CancelledError:
                # Shutdown: leave the job resumable. Shielded so a second cancel cannot skip the write.
                with contextlib.suppress(Exception):
                    await asyncio.shield(job_store.requeue(db, job_id))
                log.info("job %s interrupted; queued for the next start", job_id)
                raise
            except APIError as exc:
                log.warning("job %s failed: %s %s", job_id, exc.code, exc.message)
                await job_store.fail(db, job_id, f"{exc.code}: {exc.message}")
            except Exception:
                log.exception("job %s crashed", job_id)
                await job_store.fail(db, job_id, "internal_error: the transcription failed unexpectedly.")
            await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), True)

    async def _execute(self, db: Database, job: job_store.Job) -> None:
        settings = self.settings
        transcriber = self.providers.transcriber(job.provider)
        work = self.job_dir(job.id) / "work"
        reporter = asyncio.get_running_loop().create_task(self._report_progress(db, job.id))
        started = time.perf_counter()
        try:
            result = await transcribe_media(
                transcriber,
                Path(job.media_path),
                work,
                language=job.language,
                max_seconds=settings.max_media_minutes * 60.0,
                max_bytes=settings.openai_transcribe_max_bytes if job.provider == "openai" else None,
                concurrency=settings.transcribe_concurrency,
                deadlines=self.deadlines,
                on_progress=lambda fraction: self._percent.__setitem__(job.id, min(99, int(fraction * 100))),
            )
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, work, True)
        latency_ms = int((time.perf_counter() - started) * 1000)
        # The transcript, the bill and the job's end commit together: a crash leaves none or all three.
        charge = self.billing.transcription_charge(
            job.provider, endpoint=ENDPOINT, request_id=job.id, duration_ms=latency_ms, audio_seconds=result.duration_s
        )

        async def finish(db: Database, record: transcriptions.Transcription) -> None:
            await job_store.finish(db, job.id, record.id)

        await self.billing.save_transcription(
            job.user_id, job.provider, result, charge, source="job", filename=job.filename, then=finish
        )
        log.info("job %s done: %.0fs of audio in %d ms", job.id, result.duration_s or 0, latency_ms)

    async def _report_progress(self, db: Database, job_id: str) -> None:
        written = -1
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            percent = self._percent.get(job_id, 0)
            if percent != written:
                with contextlib.suppress(Exception):
                    await job_store.set_progress(db, job_id, percent)
                written = percent


def job_storage_exceeded(status: int, limit_bytes: int, stored: int) -> APIError:
    return APIError(
        status,
        "job_storage_exceeded",
        f"Your queued jobs' uploads would take more than {limit_bytes // (1024 * 1024)} MB on this server"
        + ("; wait for one to finish." if status == 429 else "."),
        extra={"max_bytes": limit_bytes, "stored_bytes": stored},
    )
