"""The process's job runner: transcription jobs as background tasks that outlive the request.

Ownership of a job on this machine is an exclusive `flock` on `<JOBS_DIR>/<id>/.lock`, held while a task
of this process has the job. The kernel drops it when the process dies, however it dies, so a restarted
server (or a sibling worker) can tell a dead owner's job from a live one's without waiting for a timeout.
Jobs whose upload is on another machine are vouched for by heartbeats; one silent for STALE_S fails.
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
from pathlib import Path

from databases import Database

from ..billing import Billing
from ..db import jobs as job_store
from ..db import transcriptions
from ..db.handle import DatabaseHandle
from ..errors import APIError
from ..providers.registry import Providers
from ..settings import Settings
from .long_media import transcribe_media

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_S = 120.0
MAX_ATTEMPTS = 3  # a job that keeps killing its process is failed instead of resumed forever
PARALLEL_JOBS = 2  # per process; each job already sends TRANSCRIBE_CONCURRENCY requests at once
PROGRESS_EVERY_S = 0.5
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
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                db = self.database.get()
                await job_store.heartbeat(db, list(self._tasks))
                failed = await job_store.fail_stale(db, time.time() - STALE_S, keep=list(self._tasks))
                if failed:
                    log.warning("failed %d abandoned jobs: %s", len(failed), failed)
            except Exception as exc:  # the database blinking must not end maintenance
                log.warning("job maintenance failed: %s", exc)

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
            if time.time() - path.stat().st_mtime > 3600:
                shutil.rmtree(path, ignore_errors=True)

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
