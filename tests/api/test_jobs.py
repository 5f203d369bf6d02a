"""Long media jobs against the fake providers: video input, refusals, chunking, metering, subtitles, restarts."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from werkzeug.datastructures import FileStorage

from fakes import FakeDeepgram, FakeOpenAI, run_fake
from quart_app import create_app
from quart_app.db import jobs as job_store
from quart_app.db import usage
from quart_app.db.tables import idempotency_keys, transcription_jobs
from quart_app.settings import Settings
from quart_app.transcribe import jobs as job_runner
from tests.support.inprocess import served
from tests.support.media import (
    MEDIA_DIR,
    long_recording,
    silent_video,
    spoken_video,
    truncated_video,
)
from tests.support.users import make_user

LIMIT_MB = 0.75
LIMIT_BYTES = int(LIMIT_MB * 1024 * 1024)


@pytest.fixture
async def fakes_env(tmp_path: Path) -> AsyncIterator[tuple[FakeDeepgram, FakeOpenAI, dict[str, str]]]:
    async with (
        run_fake(FakeDeepgram(api_key="dg-test-key")) as deepgram,
        run_fake(FakeOpenAI(api_key="sk-test-openai", max_request_bytes=LIMIT_BYTES)) as openai,
    ):
        env = {
            "DEEPGRAM_API_KEY": "dg-test-key",
            "DEEPGRAM_BASE_URL": deepgram.base_url,
            "OPENAI_API_KEY": "sk-test-openai",
            "OPENAI_BASE_URL": openai.base_url + "/v1",
            "OPENAI_TRANSCRIBE_MAX_MB": str(LIMIT_MB),
            "JOBS_DIR": str(tmp_path / "jobs"),
            "DRAIN_TIMEOUT_S": "2",  # a job held by the fake (hold_next) is handed back at once when the app stops
        }
        yield deepgram, openai, env


def _upload(path: Path, filename: str = "upload.bin", **form: str) -> dict:
    return {
        "files": {
            "audio": FileStorage(
                io.BytesIO(path.read_bytes()), filename=filename, content_type="application/octet-stream"
            )
        },
        "form": form,
    }


async def _wait_job(client, key: str, job_id: str, limit_s: float = 60.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while True:
        body = await (await client.get(f"/transcriptions/jobs/{job_id}", headers={"x-api-key": key})).get_json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def _usage_rows(app) -> list:  # type: ignore[no-untyped-def]
    return await app.extensions["resources"].db().fetch_all(usage.usage_logs.select())


@pytest.mark.parametrize("provider", ["deepgram", "openai"])
async def test_video_job_end_to_end(make_app, backend_env, fakes_env, provider: str) -> None:
    deepgram, openai, env = fakes_env
    async with make_app(**backend_env, **env) as (app, client):
        user, key = await make_user(app)
        posted = await client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            **_upload(spoken_video(), "clip.wav", provider=provider, language="en"),
        )
        assert posted.status_code == 202, await posted.get_data()
        accepted = await posted.get_json()
        assert accepted["status"] == "queued" and accepted["id"].startswith("job_")
        assert posted.headers["Location"] == f"/transcriptions/jobs/{accepted['id']}"

        job = await _wait_job(client, key, accepted["id"])
        assert job["status"] == "done" and job["percent"] == 100, job
        _, other_key = await make_user(app)
        assert (
            await client.get(f"/transcriptions/jobs/{job['id']}", headers={"x-api-key": other_key})
        ).status_code == 404

        # The provider got the extracted mono Opus (in Ogg), not the mp4.
        fake = deepgram if provider == "deepgram" else openai
        sent = fake.requests_to("/v1/listen" if provider == "deepgram" else "/v1/audio/transcriptions")
        assert len(sent) == 1 and sent[0].status == 200
        if provider == "openai":
            assert sent[0].files["file"]["filename"].endswith(".ogg")

        stored = await (
            await client.get(f"/api/transcriptions/{job['transcription_id']}", headers={"x-api-key": key})
        ).get_json()
        assert stored["transcript"] and stored["source"] == "job" and stored["filename"] == "clip.wav"
        assert 2 < stored["duration_s"] < 6
        srt = await client.get(f"/api/transcriptions/{job['transcription_id']}?format=srt", headers={"x-api-key": key})
        assert srt.status_code == 200 and srt.headers["Content-Type"].startswith("application/x-subrip")
        srt_text = (await srt.get_data()).decode()
        assert srt_text.startswith("1\n00:00:0") and " --> " in srt_text
        vtt = await client.get(f"/api/transcriptions/{job['transcription_id']}?format=vtt", headers={"x-api-key": key})
        assert vtt.headers["Content-Type"].startswith("text/vtt")
        assert (await vtt.get_data()).decode().startswith("WEBVTT\n\n00:00:0")

        rows = await _usage_rows(app)
        assert len(rows) == 1 and rows[0]["endpoint"] == "/transcriptions/jobs" and rows[0]["user_id"] == user.id
        assert rows[0]["audio_seconds"] == pytest.approx(stored["duration_s"], abs=0.05)
        assert os.listdir(env["JOBS_DIR"]) == []  # the spooled upload is gone once the job ended


async def test_unusable_media_is_refused_with_distinct_codes(make_app, fakes_env) -> None:
    deepgram, openai, env = fakes_env
    async with make_app(**env, MAX_MEDIA_MINUTES="10") as (app, client):
        _, key = await make_user(app)
        cases = [
            (_upload(silent_video(), provider="deepgram"), 400, "no_audio_stream"),
            (_upload(truncated_video(), "movie.mp4", provider="deepgram"), 400, "undecodable_media"),
            (_upload(long_recording(), provider="openai"), 413, "media_too_long"),
            (_upload(spoken_video(), provider="google"), 400, "validation_error"),
            (_upload(spoken_video(), provider="openai", language="english!"), 400, "validation_error"),
        ]
        for kwargs, status, code in cases:
            response = await client.post("/transcriptions/jobs", headers={"x-api-key": key}, **kwargs)
            body = await response.get_json()
            assert (response.status_code, body["error"]) == (status, code), body
        assert deepgram.requests == [] and openai.requests == []
        assert await _usage_rows(app) == []
        assert await app.extensions["resources"].db().fetch_all(transcription_jobs.select()) == []
        assert os.listdir(env["JOBS_DIR"]) == []


async def test_thirty_minutes_chunked_under_the_limit_and_stitched_in_order(make_app, backend_env, fakes_env) -> None:
    _, openai, env = fakes_env
    # Early chunks answer last: stitching must follow the timeline, not arrival.
    openai.delay_next(1.5, 1.0, 0.5, path="/v1/audio/transcriptions")
    async with make_app(**backend_env, **env) as (app, client):
        _, key = await make_user(app)
        posted = await client.post(
            "/transcriptions/jobs", headers={"x-api-key": key}, **_upload(long_recording(), provider="openai")
        )
        assert posted.status_code == 202
        job = await _wait_job(client, key, (await posted.get_json())["id"])
        assert job["status"] == "done", job

        sent = openai.requests_to("/v1/audio/transcriptions")
        assert len(sent) >= 4
        assert all(r.status == 200 and r.body_size <= LIMIT_BYTES for r in sent)
        stored = await (
            await client.get(f"/api/transcriptions/{job['transcription_id']}", headers={"x-api-key": key})
        ).get_json()
        segments = stored["segments"]
        # The fake gives each chunk one segment per sentence spanning its whole duration, so in order and
        # offset by each chunk's start they tile the half hour with no gap and no overlap.
        chunk_texts = [s["text"] for s in segments]
        assert len(set(chunk_texts)) == len(sent)  # one distinct ("Fake transcript <sha>") text per chunk
        assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(1800, abs=1)
        for before, after in zip(segments, segments[1:], strict=False):
            assert after["start"] == pytest.approx(before["end"], abs=0.05), (before, after)
        # Each text names its chunk's duration, which must match where it was placed.
        for segment in segments:
            seconds = float(re.search(r"of ([\d.]+) seconds", segment["text"]).group(1))
            assert segment["end"] - segment["start"] == pytest.approx(seconds, abs=0.1)
        assert stored["transcript"] == " ".join(chunk_texts)
        rows = await _usage_rows(app)
        assert len(rows) == 1 and rows[0]["audio_seconds"] == pytest.approx(1800, abs=1)
        assert rows[0]["cost_usd"] == pytest.approx(30 * 0.006, rel=0.01)


async def test_failed_chunk_is_retried_once_then_fails_the_job_unbilled(make_app, fakes_env) -> None:
    _, openai, env = fakes_env
    async with make_app(**env, TRANSCRIBE_CONCURRENCY="1") as (app, client):
        _, key = await make_user(app)
        five_minutes = long_recording(5)
        # The SDK retries once itself; two failures end the first attempt, our retry then succeeds.
        openai.fail_next(500, count=2, path="/v1/audio/transcriptions")
        posted = await client.post(
            "/transcriptions/jobs", headers={"x-api-key": key}, **_upload(five_minutes, provider="openai")
        )
        job = await _wait_job(client, key, (await posted.get_json())["id"])
        assert job["status"] == "done", job
        assert [r.status for r in openai.requests_to("/v1/audio/transcriptions")][:3] == [500, 500, 200]
        assert len(await _usage_rows(app)) == 1

        openai.reset()
        openai.fail_next(500, count=4, path="/v1/audio/transcriptions")  # both attempts of the first chunk
        posted = await client.post(
            "/transcriptions/jobs", headers={"x-api-key": key}, **_upload(five_minutes, provider="openai")
        )
        job = await _wait_job(client, key, (await posted.get_json())["id"])
        assert job["status"] == "failed" and "provider_error" in job["error"], job
        assert "transcription_id" not in job
        assert len(openai.requests_to("/v1/audio/transcriptions")) == 4  # the other chunks never went out
        assert len(await _usage_rows(app)) == 1  # still only the first job's row
        assert os.listdir(env["JOBS_DIR"]) == []


async def test_sync_whisper_route_chunks_a_file_over_the_limit(make_app, fakes_env) -> None:
    _, openai, env = fakes_env
    period = MEDIA_DIR / "period.wav"
    long_recording()  # builds period.wav: about a minute of 16 kHz PCM, 1.9 MB (150 kB as FLAC)
    async with make_app(**{**env, "OPENAI_TRANSCRIBE_MAX_MB": "0.1"}) as (app, client):
        openai.max_request_bytes = int(0.1 * 1024 * 1024)
        _, key = await make_user(app)
        response = await client.post(
            "/transcriptions/whisper", headers={"x-api-key": key}, **_upload(period, "meeting.wav")
        )
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        assert body["duration_s"] == pytest.approx((period.stat().st_size - 44) / 32000, abs=0.1)
        sent = openai.requests_to("/v1/audio/transcriptions")
        assert len(sent) >= 2 and all(r.status == 200 and r.body_size <= openai.max_request_bytes for r in sent)
        assert body["transcript"].count("Fake transcript") == len(sent)


# ----- quotas, the provider before the body, and the periodic sweep (issue #15: 10a, 17a) -------------


async def _post_job(client, key: str, path: Path, query: str = "", **form: str):  # type: ignore[no-untyped-def]
    return await client.post(f"/transcriptions/jobs{query}", headers={"x-api-key": key}, **_upload(path, **form))


def _job_dirs(env: dict[str, str]) -> set[str]:
    root = Path(env["JOBS_DIR"])
    return {p.name for p in root.iterdir()} if root.exists() else set()


async def test_jobs_and_their_stored_bytes_are_capped_per_user(make_app, backend_env, fakes_env) -> None:
    deepgram, _, env = fakes_env
    held = deepgram.hold_next(count=10, path="/v1/listen")  # accepted jobs stay queued or running
    ten_minutes = long_recording(10)  # about 0.6 MB as stored Opus: one fits in 1 MiB, two do not
    async with make_app(**backend_env, **env, MAX_JOBS_PER_USER="3", MAX_JOB_BYTES_PER_USER=str(1024 * 1024)) as (
        app,
        client,
    ):
        db = app.extensions["resources"].db()
        _, key = await make_user(app)
        alone = await _post_job(client, key, long_recording(30), provider="deepgram")  # over 1 MiB by itself
        body = await alone.get_json()
        assert (alone.status_code, body["error"]) == (413, "job_storage_exceeded"), body
        assert body["stored_bytes"] == 0

        accepted = []
        response = await _post_job(client, key, ten_minutes, provider="deepgram")
        assert response.status_code == 202, await response.get_data()
        accepted.append((await response.get_json())["id"])
        stored = (await db.fetch_one(transcription_jobs.select()))["stored_bytes"]
        assert 300_000 < stored < 1024 * 1024

        over = await _post_job(client, key, ten_minutes, provider="deepgram")  # the stored audio: a second is over
        body = await over.get_json()
        assert (over.status_code, body["error"]) == (429, "job_storage_exceeded"), body
        assert body["max_bytes"] == 1024 * 1024 and body["stored_bytes"] == stored

        for _ in range(2):
            small = await _post_job(client, key, spoken_video(), provider="deepgram")  # fits the bytes
            assert small.status_code == 202
            accepted.append((await small.get_json())["id"])
        fourth = await _post_job(client, key, spoken_video(), provider="deepgram")
        body = await fourth.get_json()
        assert (fourth.status_code, body["error"], body["max_jobs"]) == (429, "too_many_jobs", 3), body

        _, other_key = await make_user(app)  # the quota is per user
        assert (await _post_job(client, other_key, spoken_video(), provider="deepgram")).status_code == 202

        rows = await db.fetch_all(transcription_jobs.select())
        assert len(rows) == 4 and set(accepted) <= {r["id"] for r in rows}
        assert _job_dirs(env) == set()  # accepted audio is in the database; refused uploads left nothing
    held.set()


async def test_concurrent_uploads_cannot_both_take_the_last_job_slot(make_app, backend_env, fakes_env) -> None:
    deepgram, _, env = fakes_env
    held = deepgram.hold_next(count=4, path="/v1/listen")  # the accepted job stays running
    async with make_app(**backend_env, **env, MAX_JOBS_PER_USER="1") as (app, client):
        _, key = await make_user(app)
        responses = await asyncio.gather(
            *(_post_job(client, key, spoken_video(), provider="deepgram") for _ in range(2))
        )
        assert sorted(r.status_code for r in responses) == [202, 429]
        assert len(await app.extensions["resources"].db().fetch_all(transcription_jobs.select())) == 1
    held.set()


async def test_provider_from_the_query_or_the_form(make_app, fakes_env) -> None:
    deepgram, _, env = fakes_env
    env = {k: v for k, v in env.items() if not k.startswith("OPENAI_")}  # OpenAI unconfigured
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        cases = [
            ("?provider=google", {"provider": "deepgram"}, 400, "validation_error"),
            ("?provider=deepgram", {"provider": "openai"}, 400, "validation_error"),  # query and form disagree
            ("?provider=openai", {}, 503, "provider_unconfigured"),
            ("", {"provider": "openai"}, 503, "provider_unconfigured"),  # refused before it is stored
        ]
        for query, form, status, code in cases:
            response = await _post_job(client, key, spoken_video(), query, **form)
            body = await response.get_json()
            assert (response.status_code, body["error"]) == (status, code), (query, form, body)
        assert _job_dirs(env) == set()
        assert await app.extensions["resources"].db().fetch_all(transcription_jobs.select()) == []
        assert deepgram.requests == []

        by_query = await _post_job(client, key, spoken_video(), "?provider=deepgram")
        assert by_query.status_code == 202, await by_query.get_data()
        job = await _wait_job(client, key, (await by_query.get_json())["id"])
        assert job["status"] == "done" and job["provider"] == "deepgram", job


async def _partial_upload(port: int, key: str, target: str) -> tuple[int, dict]:
    """Send the headers and the first 64 KiB of a 20 MB multipart upload, then read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        boundary = "x-boundary-x"
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="big.mp4"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n"
        ).encode()
        writer.write(head + part + b"\0" * (64 * 1024))
        await writer.drain()
        # The rest of the body never comes: only an answer given before reading it arrives (hang guard).
        status_line = await asyncio.wait_for(reader.readline(), 30)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


async def test_unconfigured_query_provider_and_full_quota_answer_before_the_body(
    backend_env, fakes_env, tmp_path: Path
) -> None:
    deepgram, _, env = fakes_env
    held = deepgram.hold_next(count=2, path="/v1/listen")  # the accepted job stays running: the quota is full
    settings = {k: v for k, v in env.items() if not k.startswith("OPENAI_")}
    app = create_app(
        Settings.from_env(
            {
                "APP_ENV": "test",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/served.db",
                **backend_env,
                **settings,
                "MAX_JOBS_PER_USER": "1",
            }
        )
    )
    async with served(app) as port:
        _, key = await make_user(app)
        status, body = await _partial_upload(port, key, "/transcriptions/jobs?provider=openai")
        assert (status, body["error"], body["missing"]) == (503, "provider_unconfigured", ["OPENAI_API_KEY"])

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            first = await client.post(
                "/transcriptions/jobs?provider=deepgram",
                headers={"x-api-key": key},
                files={"audio": ("clip.mp4", spoken_video().read_bytes())},
            )
        assert first.status_code == 202, first.text
        for target in ("/transcriptions/jobs?provider=deepgram", "/transcriptions/jobs"):
            status, body = await _partial_upload(port, key, target)
            assert (status, body["error"]) == (429, "too_many_jobs"), body
    held.set()


async def test_orphaned_upload_directories_are_swept_while_serving(
    make_app, backend_env, fakes_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, env = fakes_env
    monkeypatch.setattr(job_runner, "SWEEP_EVERY_S", 0.1)
    async with make_app(**backend_env, **env) as (app, client):
        db = app.extensions["resources"].db()
        root = Path(env["JOBS_DIR"])
        # Left behind after the start-up sweep: a crash while an upload was being chunked.
        orphan, arriving = root / "job_0rphan0000000000000", root / "job_arriving0000000000"
        for directory in (orphan, arriving):
            directory.mkdir(parents=True)
            (directory / "source").write_bytes(b"\0" * 1024)
        stale = time.time() - 2 * job_runner.ORPHAN_AGE_S
        os.utime(orphan, (stale, stale))
        await db.execute(  # and an idempotency key past its 24 hours
            idempotency_keys.insert().values(
                user_id="usr_x",
                idem_key="old",
                fingerprint="f",
                token="t",
                state="done",
                created_at=time.time() - 25 * 3600,
                updated_at=time.time() - 25 * 3600,
            )
        )
        deadline = time.monotonic() + 30  # hang guard only
        while time.monotonic() < deadline:
            if not orphan.exists() and not await db.fetch_all(idempotency_keys.select()):
                break
            await asyncio.sleep(0.05)
        assert not orphan.exists(), "the orphaned directory is still there"
        assert await db.fetch_all(idempotency_keys.select()) == []
        assert arriving.exists()  # recent: an upload may still be arriving in it


async def test_a_job_accepted_before_the_upgrade_is_chunked_when_claimed(make_app, fakes_env) -> None:
    """A queued job from before m0008 has its upload in JOBS_DIR and no chunks: the instance holding that disk
    chunks it when it claims the job, then runs it like any other."""
    _, openai, env = fakes_env
    async with make_app(**env, JOB_POLL_S="0.1") as (app, client):
        user, key = await make_user(app)
        db = app.extensions["resources"].db()
        job_id = "job_legacy000000000000"
        source = Path(env["JOBS_DIR"]) / job_id / "source"
        source.parent.mkdir(parents=True)
        source.write_bytes(spoken_video().read_bytes())
        await job_store.create(
            db,
            job_id=job_id,
            user_id=user.id,
            provider="openai",
            language=None,
            filename="old.mp4",
            media_path=str(source),
            node="old-version",
        )
        job = await _wait_job(client, key, job_id)
        assert job["status"] == "done", job
        assert len(openai.requests_to("/v1/audio/transcriptions")) == 1
        assert not source.parent.exists()  # the upload is gone once its audio is in the database
        rows = await _usage_rows(app)
        assert [r["request_id"] for r in rows] == [job_id]
