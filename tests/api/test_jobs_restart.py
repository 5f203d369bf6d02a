"""Jobs against a real hypercorn: they outlive the client, survive SIGKILL and SIGTERM, and never hang."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from databases import Database

from fakes import FakeOpenAI, FakeServerThread
from quart_app.db import api_keys, users
from quart_app.db.database import connect, open_database
from quart_app.db.tables import transcription_jobs, usage_logs
from quart_app.settings import Settings
from tests.support.media import long_recording
from tests.support.users import unique_email

LIMIT_MB = 0.75
TRANSCRIBE = "/v1/audio/transcriptions"


def _worker_pid(parent: int) -> int:
    """Hypercorn runs the app in a spawned child; that is the process to crash."""
    with open(f"/proc/{parent}/task/{parent}/children") as handle:
        for pid in handle.read().split():
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    return int(pid)
    raise AssertionError("no hypercorn worker found")


async def _database(url: str) -> Database:
    db = open_database(Settings.from_env({"DATABASE_URL": url}).database_url)
    await connect(db)
    return db


def _post_job(base: str, key: str, path: Path) -> str:
    # The client sends the file, reads the 202 and goes away: nothing keeps the request alive.
    with httpx.Client(base_url=base, timeout=60) as client:
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


def _wait(base: str, key: str, job_id: str, done, limit_s: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while True:
        body = _job(base, key, job_id)
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


async def test_jobs_resume_after_sigkill_and_sigterm(live_server_factory, backend_env, tmp_path: Path) -> None:
    if "REDIS_URL" not in backend_env and os.environ.get("TEST_DATABASE_URL"):
        # Three server starts per run: on the suite's time budget this runs once, on the production backend.
        pytest.skip("restart path runs on postgres+redis when it is available")
    recording = long_recording(10)
    jobs_dir = tmp_path / "jobs"
    with FakeServerThread(FakeOpenAI(api_key="sk-test", max_request_bytes=int(LIMIT_MB * 1024 * 1024))) as openai:
        env = {
            **backend_env,
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": openai.base_url + "/v1",
            "OPENAI_TRANSCRIBE_MAX_MB": str(LIMIT_MB),
            "JOBS_DIR": str(jobs_dir),
            "TRANSCRIBE_CONCURRENCY": "2",
            "RATE_LIMIT_PER_MINUTE": "100000",
        }
        openai.delay_next(*[1.0] * 200, path=TRANSCRIBE)  # slow provider: the jobs are mid-way when we strike
        first = live_server_factory(**env)
        db = await _database(env["DATABASE_URL"])
        try:
            user = await users.create_user(db, email=unique_email("jobs"), role="user")
            _, key = await api_keys.create_api_key(db, user.id, "test")

            crashed = _post_job(first.url, key, recording)
            orphaned = _post_job(first.url, key, recording)
            running = _wait(first.url, key, crashed, lambda b: b["status"] == "running" and b["percent"] >= 30)
            assert running["status"] == "running", running
            assert _job(first.url, key, crashed)["status"] != "done"

            # Hard crash of the worker: no shutdown code runs at all.
            os.kill(_worker_pid(first.proc.pid), signal.SIGKILL)
            first.wait_exit(30)
            row = await db.fetch_one(sa.select(transcription_jobs).where(transcription_jobs.c.id == crashed))
            assert row["status"] == "running"  # left behind as the crash found it
            (jobs_dir / orphaned / "source").unlink()  # this one's upload is lost with the machine's disk

            openai.reset()
            second = live_server_factory(**env)
            resumed = _wait(second.url, key, crashed, lambda b: b["status"] in ("done", "failed"))
            assert resumed["status"] == "done" and resumed["transcription_id"], resumed
            lost = _wait(second.url, key, orphaned, lambda b: b["status"] in ("done", "failed"))
            assert lost["status"] == "failed" and "no longer there" in lost["error"], lost

            # Graceful stop mid-job: the job goes back to queued with its upload kept, then finishes.
            openai.delay_next(*[1.0] * 200, path=TRANSCRIBE)
            interrupted = _post_job(second.url, key, recording)
            _wait(second.url, key, interrupted, lambda b: b["status"] == "running" and b["percent"] >= 30)
            second.signal(signal.SIGTERM)
            assert second.wait_exit(40) == 0
            row = await db.fetch_one(sa.select(transcription_jobs).where(transcription_jobs.c.id == interrupted))
            assert row["status"] == "queued" and (jobs_dir / interrupted / "source").is_file()

            openai.reset()
            third = live_server_factory(**env)
            finished = _wait(third.url, key, interrupted, lambda b: b["status"] in ("done", "failed"))
            assert finished["status"] == "done", finished

            # Billed once per finished job, never for the lost one or for the interrupted attempts.
            rows = await db.fetch_all(sa.select(usage_logs).where(usage_logs.c.user_id == user.id))
            assert sorted(r["request_id"] for r in rows) == sorted([crashed, interrupted])
            assert all(r["endpoint"] == "/transcriptions/jobs" for r in rows)
            active = await db.fetch_all(
                sa.select(transcription_jobs).where(transcription_jobs.c.status.in_(("queued", "running")))
            )
            assert active == []
        finally:
            await db.disconnect()


@pytest.fixture(autouse=True)
def _no_stray_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
