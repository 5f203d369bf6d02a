"""Jobs across instances on one PostgreSQL: a job whose instance is SIGKILLed mid-way is taken over by another,
which sends only the chunks not yet done and bills once; a draining instance hands its job back to the queue."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from databases import Database

from fakes import FakeOpenAI, FakeServerThread
from quart_app.db import api_keys, users
from quart_app.db.database import connect, open_database
from quart_app.db.tables import job_chunks, transcription_jobs, usage_logs
from quart_app.settings import Settings
from tests.support.databases import create_database, drop_database, require_env
from tests.support.media import long_recording
from tests.support.users import unique_email

TRANSCRIBE = "/v1/audio/transcriptions"


def _worker_pid(parent: int) -> int:
    """Hypercorn runs the app in a spawned child; that is the process to crash."""
    with open(f"/proc/{parent}/task/{parent}/children") as handle:
        for pid in handle.read().split():
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    return int(pid)
    raise AssertionError("no hypercorn worker found")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    base = require_env("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set: takeover needs two instances on one PostgreSQL")
    url = await create_database(base)
    try:
        yield url
    finally:
        await drop_database(base, url)


async def _database(url: str) -> Database:
    db = open_database(Settings.from_env({"DATABASE_URL": url}).database_url)
    await connect(db)
    return db


def _until(check, what: str, limit_s: float = 90):  # type: ignore[no-untyped-def]
    """Poll `check` until it returns something truthy; the limit is a hang guard, not part of the test."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _post_job(base: str, key: str, path: Path) -> str:
    with httpx.Client(base_url=base, timeout=120) as client:
        response = client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            files={"audio": ("meeting.ogg", path.read_bytes())},
            data={"provider": "openai"},
        )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _job(base: str, key: str, job_id: str) -> dict:
    return httpx.get(f"{base}/transcriptions/jobs/{job_id}", headers={"x-api-key": key}, timeout=10).json()


def _transcript(base: str, key: str, transcription_id: str) -> str:
    response = httpx.get(f"{base}/api/transcriptions/{transcription_id}", headers={"x-api-key": key}, timeout=10)
    return str(response.json()["transcript"])


def _sent(openai: FakeOpenAI) -> list[str]:
    return [r.files["file"]["sha256"] for r in openai.requests_to(TRANSCRIBE) if "file" in r.files]


async def test_a_killed_instances_job_is_finished_by_another_from_its_stored_chunks(
    live_server_factory, postgres_url: str, tmp_path: Path
) -> None:
    recording = long_recording(2)  # two minutes, cut into chunks of at most 20 s
    openai = FakeOpenAI(api_key="sk-test")
    env = {
        "DATABASE_URL": postgres_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": "",
        "JOBS_DIR": str(tmp_path / "jobs-a"),  # each instance its own disk: nothing of the job is on it
        "JOB_CHUNK_S": "20",
        "JOB_LEASE_S": "3",
        "JOB_POLL_S": "0.2",
        "TRANSCRIBE_CONCURRENCY": "1",
        "DRAIN_TIMEOUT_S": "3",
        "RATE_LIMIT_PER_MINUTE": "100000",
    }
    gates = []
    with FakeServerThread(openai):
        env["OPENAI_BASE_URL"] = openai.base_url + "/v1"
        db = await _database(postgres_url)
        try:
            first = live_server_factory(**env)
            user = await users.create_user(db, email=unique_email("jobs"), role="user")
            _, key = await api_keys.create_api_key(db, user.id, "test")

            # Chunk 0 is answered; chunk 1 is held by the provider, so A dies with it in flight.
            openai.delay_next(0, path=TRANSCRIBE)
            gates.append(openai.hold_next(path=TRANSCRIBE))
            job_id = _post_job(first.url, key, recording)
            _until(lambda: len(openai.requests_to(TRANSCRIBE)) == 2, "the second chunk to reach the provider")
            chunks = await db.fetch_all(
                sa.select(job_chunks.c.chunk_index, job_chunks.c.status)
                .where(job_chunks.c.job_id == job_id)
                .order_by(job_chunks.c.chunk_index)
            )
            assert len(chunks) >= 4 and [c["status"] for c in chunks[:2]] == ["done", "pending"], chunks
            [finished_sha] = _sent(openai)  # the held request's body is not read yet
            assert not list((tmp_path / "jobs-a").glob("job_*")), "the upload must not outlive the intake"

            os.kill(_worker_pid(first.proc.pid), signal.SIGKILL)  # no shutdown code runs at all
            first.wait_exit(30)
            row = await db.fetch_one(sa.select(transcription_jobs).where(transcription_jobs.c.id == job_id))
            assert row["status"] == "running" and row["lease_owner"] is not None  # left as the crash found it

            second = live_server_factory(**{**env, "JOBS_DIR": str(tmp_path / "jobs-b")})
            done = _until(
                lambda: (body := _job(second.url, key, job_id))["status"] in ("done", "failed") and body,
                "instance B to finish the job",
            )
            assert done["status"] == "done", done

            sent = _sent(openai)
            assert sent[0] == finished_sha
            by_b = sent[1:]
            assert finished_sha not in by_b, "a finished chunk was sent again"
            assert len(by_b) == len(set(by_b)) == len(chunks) - 1  # every other chunk, once each

            row = await db.fetch_one(sa.select(transcription_jobs).where(transcription_jobs.c.id == job_id))
            assert row["attempts"] == 2 and row["lease_owner"] is None and row["stored_bytes"] == 0
            assert await db.fetch_all(sa.select(job_chunks).where(job_chunks.c.job_id == job_id)) == []
            usage = await db.fetch_all(sa.select(usage_logs).where(usage_logs.c.user_id == user.id))
            assert [u["request_id"] for u in usage] == [job_id]  # billed once
            assert usage[0]["audio_seconds"] == pytest.approx(120, abs=2)
            transcript = _transcript(second.url, key, done["transcription_id"])
            assert transcript.count("Fake transcript") == len(chunks)

            # A draining instance starts no new chunk and hands its job back to the queue at the drain deadline.
            openai.reset()
            gates.append(openai.hold_next(path=TRANSCRIBE))
            drained = _post_job(second.url, key, recording)
            _until(lambda: len(openai.requests_to(TRANSCRIBE)) == 1, "the drained job's first chunk to be sent")
            second.signal(signal.SIGTERM)
            assert second.wait_exit(60) == 0
            row = await db.fetch_one(sa.select(transcription_jobs).where(transcription_jobs.c.id == drained))
            assert (row["status"], row["lease_owner"], row["attempts"]) == ("queued", None, 0), dict(row)
            stored = await db.fetch_val(
                sa.select(sa.func.count()).select_from(job_chunks).where(job_chunks.c.job_id == drained)
            )
            assert stored >= 4  # its audio stays in the database for the next instance
        finally:
            for gate in gates:
                gate.set()
            await db.disconnect()


@pytest.fixture(autouse=True)
def _no_stray_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
