"""Every limit and every kind of bad input, through both front ends: each gets `error` with its own code, the
connection stays usable, nothing else changes, and nothing logs a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import FakeDeepgram
from tests.live.support import FRONT_ENDS, TEXT, open_client, register_speech, serve_live, stored, usage_rows
from tests.support.live_audio import silence
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("no_tracebacks")


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_bad_input_gets_an_error_and_changes_nothing(kind: str, fake: FakeDeepgram, tmp_path: Path) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.send_audio(b"\0" * 640 * 3)  # audio before start: one error, not one per chunk
            await client.send_event("bogus", {"x": 1})
            await client.wait_for("error", lambda _: len(client.of("error")) == 2)
            assert await client.start_and_wait(encoding="mp3") == (
                "error",
                {
                    "code": "unsupported_encoding",
                    "message": "encoding must be one of linear16, mulaw, opus, webm",
                    "supported": ["linear16", "mulaw", "opus", "webm"],
                },
            )
            answer, error = await client.start_and_wait(sample_rate=1, interim_results="sometimes")
            assert (answer, error["code"], set(error["fields"])) == (
                "error",
                "invalid_options",
                {"sample_rate", "interim_results"},
            )
            await client.stop()  # nothing to stop
            if kind == "socketio":
                await client.send_event("audio", "not binary")
                await client.send_event("start", [1, 2, 3])
            else:
                await client.send_text("{not json")  # type: ignore[attr-defined]
                await client.send_text('["start"]')  # type: ignore[attr-defined]
            await client.wait_for("error", lambda _: len(client.of("error")) == 7)
            assert client.error_codes() == [
                "not_started",
                "bad_message",
                "unsupported_encoding",
                "invalid_options",
                "not_started",
                "bad_message",
                "bad_message",
            ]
            assert fake.live_connections == []  # no upstream was opened for any of it

            assert (await client.start_and_wait())[0] == "started"
            assert await client.start_and_wait() == (
                "error",
                {"code": "already_started", "message": "a stream is already running; send stop first"},
            )
            await client.send_audio(pcm + silence(0.3))
            stopped = await client.stop_and_wait()
            await client.send_audio(b"\0" * 640)  # after stop
            await client.wait_for("error", lambda p: p["code"] == "not_started" and len(client.of("error")) == 9)
        assert stopped["text"] == TEXT
        [upstream] = fake.live_connections
        assert upstream.bytes_received == len(pcm) + 9600  # nothing but the stream's own audio went upstream
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == TEXT
        assert len(await usage_rows(app, user.id)) == 1


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_a_chunk_over_the_limit_is_refused_and_the_stream_goes_on(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake, STREAM_MAX_CHUNK_BYTES="4096") as (app, port):
        _user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            await client.send_audio_chunk(b"\1" * 4097)
            await client.send_audio(pcm + silence(0.3), size=4096)
            stopped = await client.stop_and_wait()
        [error] = client.of("error")
        assert error["code"] == "chunk_too_large" and error["max_bytes"] == 4096
        assert stopped["text"] == TEXT
        assert fake.live_connection().bytes_received == len(pcm) + 9600


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_a_stream_over_the_maximum_length_is_stopped_and_saved(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake, STREAM_MAX_SECONDS="1") as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            await client.send_audio(pcm)  # 2.4 s of audio
            stopped = await client.wait_for("stopped")
            [error] = [e for e in client.of("error") if e["code"] != "not_started"]
        assert error["code"] == "stream_too_long" and error["max_seconds"] == 1
        assert 0 < stopped["duration_s"] <= 1.0
        assert stopped["text"].startswith("hello")
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == stopped["text"]
        [usage] = await usage_rows(app, user.id)
        assert usage["audio_seconds"] == stopped["duration_s"]
        assert fake.live_connection().bytes_received <= 32000


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_a_stream_without_audio_times_out_and_bills_nothing(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    async with serve_live(tmp_path, fake, STREAM_IDLE_TIMEOUT_S="0.3") as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            error = await client.wait_for("error")
            stopped = await client.wait_for("stopped")
            assert (await client.start_and_wait())[0] == "started"  # still usable
        assert error["code"] == "idle_timeout" and error["idle_timeout_s"] == 0.3
        assert stopped == {"transcription_id": None, "text": "", "duration_s": 0.0}
        assert await usage_rows(app, user.id) == []


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_concurrent_streams_per_user_are_limited(kind: str, fake: FakeDeepgram, tmp_path: Path) -> None:
    async with serve_live(tmp_path, fake, STREAM_MAX_PER_USER="1") as (app, port):
        _user, key = await make_user(app)
        _other, other_key = await make_user(app)
        async with (
            open_client(kind, port, key) as first,
            open_client(kind, port, key) as second,
            open_client(kind, port, other_key) as third,
        ):
            assert (await first.start_and_wait())[0] == "started"
            answer, error = await second.start_and_wait()
            assert (answer, error["code"], error["max_streams"]) == ("error", "too_many_streams", 1)
            assert (await third.start_and_wait())[0] == "started"  # another user
            await first.stop_and_wait()
            assert (await second.start_and_wait())[0] == "started"


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_starts_per_minute_are_limited(
    kind: str, fake: FakeDeepgram, tmp_path: Path, backend_env: dict[str, str]
) -> None:
    # With REDIS_URL the starts are counted in Redis, shared by every instance.
    async with serve_live(tmp_path, fake, backend_env, STREAM_STARTS_PER_MINUTE="2") as (app, port):
        _user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            for _ in range(2):
                assert (await client.start_and_wait())[0] == "started"
                await client.stop_and_wait()
            answer, error = await client.start_and_wait()
        assert (answer, error["code"]) == ("error", "rate_limited")
        assert 1 <= error["retry_after"] <= 60
        assert len(fake.live_connections) == 2
