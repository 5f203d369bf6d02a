"""Idempotency-Key on the paid upload routes (issue #15, finding 16): a client retrying after a crash gets
the first answer (same transcription or job, `Idempotent-Replay: true`), the provider is not called again
and nothing is billed twice; a reused key with another request is 422, a duplicate in flight 409."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from fakes import FakeDeepgram, FakeOpenAI, run_fake
from quart_app.db.tables import idempotency_keys, transcription_jobs, transcriptions, usage_logs
from tests.support.audio import spoken
from tests.support.media import spoken_video
from tests.support.users import make_user

ROUTES = {"deepgram": "/v1/listen", "whisper": "/v1/audio/transcriptions"}


@pytest.fixture
async def fakes_env(tmp_path: Path) -> AsyncIterator[tuple[FakeDeepgram, FakeOpenAI, dict[str, str]]]:
    async with (
        run_fake(FakeDeepgram(api_key="dg-test-key")) as deepgram,
        run_fake(FakeOpenAI(api_key="sk-test-openai")) as openai,
    ):
        yield (
            deepgram,
            openai,
            {
                "DEEPGRAM_API_KEY": "dg-test-key",
                "DEEPGRAM_BASE_URL": deepgram.base_url,
                "OPENAI_API_KEY": "sk-test-openai",
                "OPENAI_BASE_URL": openai.base_url + "/v1",
                "JOBS_DIR": str(tmp_path / "jobs"),
            },
        )


def _upload(data: bytes, **form: str) -> dict:
    return {
        "files": {"audio": FileStorage(io.BytesIO(data), filename="clip.bin", content_type="application/octet-stream")},
        "form": form,
    }


async def _post(client, path: str, key: str, idem: str | None, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    headers = {"x-api-key": key} | ({"Idempotency-Key": idem} if idem is not None else {})
    return await client.post(path, headers=headers, **_upload(data, **form))


async def _count(app, table) -> int:  # type: ignore[no-untyped-def]
    db = app.extensions["resources"].db()
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(table)))


@pytest.mark.parametrize("route", ["deepgram", "whisper"])
async def test_a_retried_transcription_is_answered_and_billed_once(make_app, backend_env, fakes_env, route) -> None:  # type: ignore[no-untyped-def]
    deepgram, openai, env = fakes_env
    fake = deepgram if route == "deepgram" else openai
    path, other = f"/transcriptions/{route}", "/transcriptions/" + ("whisper" if route == "deepgram" else "deepgram")
    audio = spoken("Retry me, I was already paid for.", "mp3")
    async with make_app(**backend_env, **env) as (app, client):
        _, key = await make_user(app)
        first = await _post(client, path, key, "order-42:attempt", audio, language="en")
        assert first.status_code == 200, await first.get_data()
        assert "Idempotent-Replay" not in first.headers
        original = await first.get_json()

        again = await _post(client, path, key, "order-42:attempt", audio, language="en")
        assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
        assert await again.get_json() == original  # the same transcription id, text and figures
        assert len(fake.requests_to(ROUTES[route])) == 1
        assert await _count(app, usage_logs) == 1 and await _count(app, transcriptions) == 1

        for reused in (
            await _post(client, path, key, "order-42:attempt", spoken("Something else entirely.", "mp3")),
            await _post(client, path, key, "order-42:attempt", audio, language="fr"),
            await _post(client, other, key, "order-42:attempt", audio, language="en"),
        ):
            body = await reused.get_json()
            assert (reused.status_code, body["error"]) == (422, "idempotency_key_reused"), body

        _, other_key = await make_user(app)  # keys belong to their user
        theirs = await _post(client, path, other_key, "order-42:attempt", audio, language="en")
        assert theirs.status_code == 200 and "Idempotent-Replay" not in theirs.headers
        assert (await theirs.get_json())["id"] != original["id"]

        # Past its 24 hours the key is free for a new request.
        db = app.extensions["resources"].db()
        await db.execute(idempotency_keys.update().values(created_at=time.time() - 25 * 3600))
        fresh = await _post(client, path, key, "order-42:attempt", spoken("A new day.", "mp3"))
        assert fresh.status_code == 200 and "Idempotent-Replay" not in fresh.headers
        assert len(fake.requests_to(ROUTES[route])) == 3
        assert await _count(app, usage_logs) == 3


async def test_a_duplicate_in_flight_is_409_then_replays(make_app, backend_env, fakes_env) -> None:
    deepgram, _, env = fakes_env
    held = deepgram.hold_next(path="/v1/listen")  # the first request stays in flight until released
    audio = spoken("Patience is a virtue.", "ogg")
    async with make_app(**backend_env, **env) as (app, client):
        _, key = await make_user(app)
        first = asyncio.create_task(_post(client, "/transcriptions/deepgram", key, "k-1", audio))
        deadline = time.monotonic() + 30  # until the first request reached the provider; hang guard only
        while not deepgram.requests and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        duplicate = await _post(client, "/transcriptions/deepgram", key, "k-1", audio)
        body = await duplicate.get_json()
        assert (duplicate.status_code, body["error"]) == (409, "idempotency_key_in_progress"), body
        assert duplicate.headers["Retry-After"]
        held.set()
        original = await first
        assert original.status_code == 200
        replay = await _post(client, "/transcriptions/deepgram", key, "k-1", audio)
        assert replay.headers["Idempotent-Replay"] == "true"
        assert await replay.get_json() == await original.get_json()
        assert len(deepgram.requests) == 1 and await _count(app, usage_logs) == 1


async def test_a_failed_request_gives_its_key_back(make_app, fakes_env) -> None:
    deepgram, _, env = fakes_env
    deepgram.fail_next(500, path="/v1/listen")
    audio = spoken("Second time lucky.", "flac")
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        failed = await _post(client, "/transcriptions/deepgram", key, "k-2", audio)
        assert failed.status_code == 502
        retried = await _post(client, "/transcriptions/deepgram", key, "k-2", audio)
        assert retried.status_code == 200 and "Idempotent-Replay" not in retried.headers
        assert await _count(app, usage_logs) == 1


async def test_malformed_keys_are_refused_before_the_upload(make_app, fakes_env) -> None:
    deepgram, _, env = fakes_env
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        for bad in ("", "k" * 256, "tab\there", "caf\u00e9"):
            for path in ("/transcriptions/deepgram", "/transcriptions/jobs"):
                response = await _post(client, path, key, bad, spoken("Hello.", "mp3"), provider="deepgram")
                body = await response.get_json()
                assert (response.status_code, body["error"]) == (400, "validation_error"), (bad, path, body)
                assert "Idempotency-Key" in body["fields"]
        ok = await _post(client, "/transcriptions/deepgram", key, "k" * 255, spoken("Hello.", "mp3"))
        assert ok.status_code == 200
        assert len(deepgram.requests) == 1


async def test_a_retried_job_upload_returns_the_first_job(make_app, backend_env, fakes_env) -> None:
    deepgram, _, env = fakes_env
    held = deepgram.hold_next(path="/v1/listen")  # the job stays running: the user is at the quota
    video = spoken_video().read_bytes()
    # DRAIN_TIMEOUT_S: the drain hands the held job back at its deadline, within the test app's shutdown wait.
    async with make_app(**backend_env, **env, MAX_JOBS_PER_USER="1", DRAIN_TIMEOUT_S="2") as (app, client):
        _, key = await make_user(app)
        first = await _post(client, "/transcriptions/jobs", key, "upload-7", video, provider="deepgram")
        assert first.status_code == 202, await first.get_data()
        job = await first.get_json()

        again = await _post(client, "/transcriptions/jobs", key, "upload-7", video, provider="deepgram")
        assert again.status_code == 202 and again.headers["Idempotent-Replay"] == "true"  # not 429: a replay
        assert await again.get_json() == job
        assert again.headers["Location"] == first.headers["Location"] == f"/transcriptions/jobs/{job['id']}"

        reused = await _post(client, "/transcriptions/jobs", key, "upload-7", video, provider="openai")
        assert (reused.status_code, (await reused.get_json())["error"]) == (422, "idempotency_key_reused")
        assert await _count(app, transcription_jobs) == 1
        assert os.listdir(env["JOBS_DIR"]) == []  # the job's audio is in the database, the upload gone
    held.set()
