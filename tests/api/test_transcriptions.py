"""REST transcription against fake Deepgram and OpenAI servers: shapes, storage, metering and every error."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from werkzeug.datastructures import FileStorage

from fakes import FakeDeepgram, FakeOpenAI, run_fake
from quart_app.db import usage
from tests.support.audio import spoken
from tests.support.users import make_user

SPEECH = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
async def fakes_env() -> AsyncIterator[tuple[FakeDeepgram, FakeOpenAI, dict[str, str]]]:
    async with (
        run_fake(FakeDeepgram(api_key="dg-test-key")) as deepgram,
        run_fake(FakeOpenAI(api_key="sk-test-openai")) as openai,
    ):
        env = {
            "DEEPGRAM_API_KEY": "dg-test-key",
            "DEEPGRAM_BASE_URL": deepgram.base_url,
            "OPENAI_API_KEY": "sk-test-openai",
            "OPENAI_BASE_URL": openai.base_url + "/v1",
        }
        yield deepgram, openai, env


def _upload(data: bytes, filename: str = "clip.wav", content_type: str = "audio/wav", **form: str) -> dict:
    return {
        "files": {"audio": FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)},
        "form": form,
    }


async def _usage_rows(app) -> list:  # type: ignore[no-untyped-def]
    db = app.extensions["resources"].db()
    return await db.fetch_all(usage.usage_logs.select())


@pytest.mark.parametrize("route", ["deepgram", "whisper"])
async def test_transcribe_store_list_and_meter(make_app, backend_env, fakes_env, route: str) -> None:
    deepgram, openai, env = fakes_env
    audio = spoken(SPEECH)
    for fake in (deepgram, openai):
        fake.register_transcript(audio, SPEECH)
    async with make_app(**backend_env, **env) as (app, client):
        user, key = await make_user(app)
        response = await client.post(
            f"/transcriptions/{route}", headers={"x-api-key": key}, **_upload(audio, language="en")
        )
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        assert body["transcript"] == SPEECH
        assert body["provider"] == {"deepgram": "deepgram", "whisper": "openai"}[route]
        assert body["language"] == "en"
        assert 2.0 < body["duration_s"] < 6.0
        assert body["processing_info"]["model"] in ("nova-3", "whisper-1")
        assert body["processing_info"]["latency_ms"] >= 0
        assert set(body) == {"id", "transcript", "language", "duration_s", "provider", "processing_info"}

        if route == "deepgram":
            request = deepgram.requests_to("/v1/listen")[-1]
            assert request.header("Authorization") == "Token dg-test-key"
            assert request.param("model") == "nova-3" and request.param("language") == "en"
            assert request.body_size == len(audio)
        else:
            request = openai.requests_to("/v1/audio/transcriptions")[-1]
            assert request.header("Authorization") == "Bearer sk-test-openai"
            assert request.files["file"]["size"] == len(audio)
            assert request.files["file"]["filename"].endswith(".wav")
            assert request.fields["model"] == ["whisper-1"]
            assert request.fields["response_format"] == ["verbose_json"]

        listed = await (await client.get("/api/transcriptions", headers={"x-api-key": key})).get_json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
        one = await (await client.get(f"/api/transcriptions/{body['id']}", headers={"x-api-key": key})).get_json()
        assert one["transcript"] == SPEECH and one["filename"] == "clip.wav"
        found = await (await client.get("/api/transcriptions?q=lazy+fox", headers={"x-api-key": key})).get_json()
        assert found["total"] == 1
        missing = await (await client.get("/api/transcriptions?q=elephant", headers={"x-api-key": key})).get_json()
        assert missing["total"] == 0

        _, other_key = await make_user(app)
        assert (
            await client.get(f"/api/transcriptions/{body['id']}", headers={"x-api-key": other_key})
        ).status_code == 404
        assert (
            await client.delete(f"/api/transcriptions/{body['id']}", headers={"x-api-key": other_key})
        ).status_code == 404

        rows = await _usage_rows(app)
        assert len(rows) == 1
        row = rows[0]
        provider = body["provider"]
        assert row["service"] == f"transcription.{provider}" and row["user_id"] == user.id
        assert row["endpoint"] == f"/transcriptions/{route}"
        assert row["audio_seconds"] == pytest.approx(body["duration_s"])
        per_minute = 0.0043 if provider == "deepgram" else 0.006
        assert row["cost_usd"] == pytest.approx(body["duration_s"] / 60 * per_minute, rel=1e-4)
        monthly = await (await client.get("/api/usage", headers={"x-api-key": key})).get_json()
        assert monthly["services"][0]["service"] == f"transcription.{provider}"
        assert monthly["total_requests"] == 1
        assert (await (await client.get("/api/usage", headers={"x-api-key": other_key})).get_json())[
            "total_requests"
        ] == 0

        assert (await client.delete(f"/api/transcriptions/{body['id']}", headers={"x-api-key": key})).status_code == 204
        assert (await client.get(f"/api/transcriptions/{body['id']}", headers={"x-api-key": key})).status_code == 404


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "flac", "webm", "m4a"])
async def test_other_containers_are_recognised_by_content(make_app, fakes_env, fmt: str) -> None:
    deepgram, _, env = fakes_env
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        # A misleading name and content type: the type comes from the bytes.
        response = await client.post(
            "/transcriptions/deepgram",
            headers={"x-api-key": key},
            **_upload(spoken(SPEECH, fmt), filename="upload.bin", content_type="application/octet-stream"),
        )
        assert response.status_code == 200, await response.get_data()
        assert (await response.get_json())["transcript"]


async def _post(client, key: str, route: str = "deepgram", **kwargs):  # type: ignore[no-untyped-def]
    return await client.post(f"/transcriptions/{route}", headers={"x-api-key": key}, **kwargs)


async def test_bad_uploads_get_clear_errors_and_are_not_billed(make_app, fakes_env) -> None:
    deepgram, openai, env = fakes_env
    async with make_app(**env, MAX_UPLOAD_MB="1") as (app, client):
        _, key = await make_user(app)
        cases = [
            (_upload(b"\0" * (1024 * 1024 + 10)), 413, "payload_too_large"),
            (
                _upload(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, filename="x.png", content_type="image/png"),
                415,
                "unsupported_media_type",
            ),
            (_upload(b""), 400, "empty_audio"),
            (_upload(b"this is not audio at all" * 10, filename="fake.wav"), 400, "undecodable_audio"),
            ({"files": {"sound": FileStorage(io.BytesIO(b"RIFF"), filename="a.wav")}}, 400, "missing_file"),
            (_upload(spoken(SPEECH), language="english!"), 400, "validation_error"),
        ]
        for kwargs, status, error in cases:
            response = await _post(client, key, **kwargs)
            body = await response.get_json()
            assert response.status_code == status, (error, body)
            assert body["error"] == error and body["message"]
        json_body = await client.post("/transcriptions/deepgram", headers={"x-api-key": key}, json={"audio": "x"})
        assert json_body.status_code == 415
        # A RIFF/WAVE header with no data chunk reaches the provider, which cannot decode it: the caller's 400.
        corrupt = b"RIFF" + (100).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + b"\x01" * 16
        response = await _post(client, key, route="whisper", **_upload(corrupt))
        body = await response.get_json()
        assert response.status_code == 400 and body["error"] == "undecodable_audio", body
        assert openai.requests_to("/v1/audio/transcriptions")[-1].status == 400
        assert deepgram.requests == []  # nothing invalid was sent on
        assert await _usage_rows(app) == []
        listed = await (await client.get("/api/transcriptions", headers={"x-api-key": key})).get_json()
        assert listed["total"] == 0


async def test_provider_failures_map_to_502_504_and_bill_nothing(make_app, fakes_env) -> None:
    deepgram, openai, env = fakes_env
    async with make_app(**env, OPENAI_TIMEOUT="1") as (app, client):
        _, key = await make_user(app)
        audio = spoken(SPEECH)
        deepgram.fail_next(500, message="internal meltdown, Token dg-test-key leaked")
        failed = await _post(client, key, **_upload(audio))
        body = await failed.get_json()
        assert failed.status_code == 502 and body["error"] == "provider_error"
        assert body["provider"] == "deepgram" and body["upstream_status"] == 500
        assert "dg-test-key" not in body["message"] and body["request_id"]

        openai.fail_next(429)
        openai.fail_next(429)  # the SDK retries once
        limited = await _post(client, key, route="whisper", **_upload(audio))
        assert limited.status_code == 502
        assert (await limited.get_json())["upstream_status"] == 429

        openai.hang_next(5, count=2)
        slow = await _post(client, key, route="whisper", **_upload(audio))
        assert slow.status_code == 504
        assert (await slow.get_json())["error"] == "provider_timeout"
        assert await _usage_rows(app) == []


async def test_wrong_provider_key_is_a_502(make_app, fakes_env) -> None:
    deepgram, _, env = fakes_env
    async with make_app(**{**env, "DEEPGRAM_API_KEY": "wrong-key"}) as (app, client):
        _, key = await make_user(app)
        response = await _post(client, key, **_upload(spoken(SPEECH)))
        body = await response.get_json()
        assert response.status_code == 502 and body["upstream_status"] == 401
        assert "wrong-key" not in body["message"]


async def test_unconfigured_provider_is_503_before_reading_upload(make_app) -> None:
    async with make_app() as (app, client):
        _, key = await make_user(app)
        for route, variable in (("deepgram", "DEEPGRAM_API_KEY"), ("whisper", "OPENAI_API_KEY")):
            response = await _post(client, key, route=route, **_upload(spoken(SPEECH)))
            body = await response.get_json()
            assert response.status_code == 503
            assert body["missing"] == [variable] and variable in body["message"]


async def test_requires_authentication(make_app, fakes_env) -> None:
    _, _, env = fakes_env
    async with make_app(**env) as (app, client):
        response = await client.post("/transcriptions/deepgram", **_upload(spoken(SPEECH)))
        assert response.status_code == 401


async def test_a_model_without_durations_is_metered_from_the_probed_length(make_app, backend_env, fakes_env) -> None:
    """gpt-4o-transcribe answers plain json (no duration): the upload's own length is what is billed."""
    _, openai, env = fakes_env
    async with make_app(**backend_env, **env, OPENAI_TRANSCRIBE_MODEL="gpt-4o-transcribe") as (app, client):
        user, key = await make_user(app)
        expected = len(spoken(SPEECH)) - 44  # the WAV's PCM bytes: 22.05 kHz mono 16-bit
        seconds = expected / (22050 * 2)
        for fmt in ("mp3", "ogg", "webm", "m4a", "flac", "wav"):
            response = await _post(
                client, key, route="whisper", **_upload(spoken(SPEECH, fmt), filename=f"a.{fmt}", content_type="")
            )
            assert response.status_code == 200, (fmt, await response.get_data())
            body = await response.get_json()
            assert body["processing_info"]["model"] == "gpt-4o-transcribe"
            assert body["duration_s"] == pytest.approx(seconds, abs=0.15), fmt
        assert all(r.fields["response_format"] == ["json"] for r in openai.requests_to("/v1/audio/transcriptions"))
        rows = await _usage_rows(app)
        assert len(rows) == 6 and all(r["user_id"] == user.id for r in rows)
        for row in rows:
            assert row["audio_seconds"] == pytest.approx(seconds, abs=0.15)
            assert row["cost_usd"] == pytest.approx(row["audio_seconds"] / 60 * 0.006, rel=1e-4) and row["cost_usd"] > 0
