"""Live transcription through both front ends (Socket.IO "/audio-stream" and the plain WebSocket), driven by
real clients against the app under hypercorn, Deepgram played by FakeDeepgram's live endpoint.

Audio is sent as fast as the sockets take it (the service does not care); waits are hang guards only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from fakes import FakeDeepgram
from tests.live.support import (
    FRONT_ENDS,
    TEXT,
    open_client,
    register_speech,
    serve_live,
    stored,
    usage_rows,
    wait_until,
)
from tests.support.live_audio import WORD_GAP, silence, spoken_raw
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("no_tracebacks")


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_spoken_wav_gives_its_words_stored_searchable_and_metered_once(
    kind: str, fake: FakeDeepgram, tmp_path: Path, backend_env: dict[str, str]
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake, backend_env) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key, "?lang=en-US") as client:
            connected = client.of("connected")[0]
            assert connected["message"] == "Successfully connected" and connected["session_id"].startswith("lts_")
            assert await client.start_and_wait(encoding="linear16", sample_rate=16000, channels=1) == (
                "started",
                {"session_id": connected["session_id"]},
            )
            await client.send_audio(pcm + silence(1.2))
            stopped = await client.stop_and_wait()

        finals = [p for p in client.of("transcript") if p["is_final"]]
        assert client.final_text() == TEXT
        assert [w["punctuated_word"] for w in client.final_words()] == TEXT.split()
        assert any(not p["is_final"] for p in client.of("transcript"))
        assert finals[-1]["speech_final"] and finals[-1]["confidence"] > 0.9
        first = finals[0]
        assert set(first) == {"text", "is_final", "speech_final", "start", "duration", "confidence", "words"}
        assert first["start"] <= first["words"][0]["start"] < first["words"][0]["end"]
        assert client.of("utterance_end")[0]["last_word_end"] == pytest.approx(finals[-1]["words"][-1]["end"])
        assert stopped["text"] == TEXT
        assert stopped["duration_s"] == pytest.approx((len(pcm) + 38400) / 32000, abs=1e-3)
        names = client.recorder.names()
        assert names.index("started") < names.index("transcript") < names.index("stopped")
        assert client.error_codes() == []

        upstream = fake.live_connection()
        assert upstream.param("language") == "en-US" and upstream.param("encoding") == "linear16"
        assert upstream.param("sample_rate") == "16000" and upstream.param("interim_results") == "true"
        assert upstream.control_types[-2:] == ["Finalize", "CloseStream"]

        record = await stored(app, user.id, stopped["transcription_id"])
        assert (record.source, record.provider, record.transcript, record.language) == (
            "stream",
            "deepgram",
            TEXT,
            "en-US",
        )
        assert [s.text for s in record.segments] == TEXT.split()
        assert record.duration_s == stopped["duration_s"]
        [usage] = await usage_rows(app, user.id)
        assert usage["service"] == "transcription.deepgram_live"
        assert usage["audio_seconds"] == pytest.approx(stopped["duration_s"])
        assert usage["cost_usd"] == pytest.approx(stopped["duration_s"] / 60 * 0.0077, rel=1e-3)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}) as http:
            history = (await http.get("/api/transcriptions")).json()
            assert [item["id"] for item in history["items"]] == [record.id]
            found = (await http.get("/api/transcriptions", params={"q": "how are"})).json()
            assert [item["id"] for item in found["items"]] == [record.id]
            one = (await http.get(f"/api/transcriptions/{record.id}")).json()
            assert one["source"] == "stream" and one["transcript"] == TEXT
            services = (await http.get("/api/usage")).json()["services"]
            assert [(s["service"], s["requests"]) for s in services] == [("transcription.deepgram_live", 1)]


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_a_new_start_follows_a_stop_on_the_same_connection(kind: str, fake: FakeDeepgram, tmp_path: Path) -> None:
    pcm = register_speech(fake)
    mulaw = spoken_raw(TEXT, rate=8000, encoding="mulaw", word_gap=WORD_GAP)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            assert (await client.start_and_wait())[0] == "started"
            await client.send_audio(pcm + silence(0.3))
            # stop and the next start back to back: the first stream ends (stopped) before the second starts.
            await client.stop()
            await client.start(encoding="mulaw", sample_rate=8000, interim_results=False)
            await client.send_audio(mulaw + silence(0.3, rate=8000, encoding="mulaw"), size=160)
            await client.stop()
            await client.wait_for("stopped", lambda _: len(client.of("stopped")) == 2)
        first, second = client.of("stopped")
        assert first["text"] == second["text"] == TEXT
        assert first["transcription_id"] != second["transcription_id"]
        names = [n for n in client.recorder.names() if n in ("started", "stopped")]
        assert names == ["started", "stopped", "started", "stopped"]
        later = client.events[client.events.index(("stopped", first)) :]
        assert all(p["is_final"] for n, p in later if n == "transcript")  # interim_results=false
        assert client.error_codes() == []
        assert [c.param("encoding") for c in fake.live_connections] == ["linear16", "mulaw"]
        assert len(await usage_rows(app, user.id)) == 2


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_disconnect_mid_stream_closes_the_upstream_and_stores_the_words(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            await client.send_audio(pcm[: len(pcm) * 2 // 3])
            await client.wait_for("transcript", lambda p: p["is_final"] and p["text"] == "world,")
        # The client is gone: the upstream is told to close at once and its last results are kept.
        [upstream] = await fake.wait_live_closed(1)
        assert upstream.control_types[-1] == "CloseStream" and upstream.close_code == 1000

        async def stored_rows() -> list[str]:
            rows = (
                await app.extensions["resources"]
                .db()
                .fetch_all("SELECT transcript FROM transcriptions WHERE user_id = :u", {"u": user.id})
            )
            return [row[0] for row in rows]

        [text] = await wait_until(stored_rows)
        assert text.startswith("hello world, how")
        await wait_until(lambda: usage_rows(app, user.id))
        [usage] = await usage_rows(app, user.id)
        sent_s = len(pcm) * 2 // 3 / 32000
        # Metered by the audio that reached the service (the plain WebSocket may lose the one chunk Quart had
        # already handed over when it cancelled the handler for the disconnect).
        assert sent_s - 0.021 <= usage["audio_seconds"] <= sent_s + 1e-3


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_an_upstream_drop_is_recovered_with_no_word_lost_and_continuous_times(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    spans = fake.live_spans(pcm)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            fake.live_drop_next(after_bytes=len(pcm) // 2)  # TCP cut mid-word, no close frame
            await client.send_audio(pcm + silence(0.5))
            stopped = await client.stop_and_wait()
        assert client.error_codes() == []
        assert stopped["text"] == TEXT
        words = client.final_words()
        assert [w["punctuated_word"] for w in words] == TEXT.split()
        # Stream time, not connection time: each word starts where it is in the audio, across the reconnect.
        for word, (start, _end, _text) in zip(words, spans, strict=True):
            assert word["start"] == pytest.approx(start, abs=0.05)
        first, second = fake.live_connections
        assert first.dropped and second.closed_by == "server" and second.close_code == 1000
        # The replay started at the last final's end, so the two connections together heard the audio
        # once plus the unconfirmed part of it once more, not the whole stream twice.
        assert second.bytes_received < len(pcm) + 16000
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == TEXT
        [usage] = await usage_rows(app, user.id)
        assert usage["audio_seconds"] == pytest.approx(stopped["duration_s"])


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_a_failed_reconnect_reports_an_error_and_keeps_what_was_transcribed(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            fake.live_drop_next(after_bytes=len(pcm) // 2)
            fake.fail_next(503, path="/v1/listen")  # the reconnection is refused
            await client.send_audio(pcm)
            error = await client.wait_for("error")
            stopped = await client.wait_for("stopped")
            assert error["code"] == "upstream_lost" and "saved" in error["message"]
            names = client.recorder.names()
            assert names.index("error") < names.index("stopped")
            # The connection is still usable: a new stream starts.
            assert (await client.start_and_wait())[0] == "started"
            await client.stop_and_wait()
        heard = stopped["text"]
        assert heard and TEXT.startswith(heard.rstrip(","))
        record = await stored(app, user.id, stopped["transcription_id"])
        assert record.transcript == heard
        [usage] = await usage_rows(app, user.id)  # the second stream had no audio: not billed
        finals_end = max(p["start"] + p["duration"] for p in client.of("transcript") if p["is_final"])
        assert 0 < usage["audio_seconds"] <= finals_end + 1e-3  # only what came back as final results


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_keepalive_holds_the_upstream_while_the_client_is_quiet(
    kind: str, fake: FakeDeepgram, tmp_path: Path
) -> None:
    pcm = register_speech(fake)
    fake.idle_timeout_s = 1.0  # Deepgram's 10 s, scaled down
    async with serve_live(tmp_path, fake, STREAM_KEEPALIVE_S="0.1") as (_app, port):
        _user, key = await make_user(_app)
        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            await client.send_audio(pcm[: len(pcm) // 2])
            await fake.wait_live(lambda rs: rs[-1].control_types.count("KeepAlive") >= 15)  # 1.5 s quiet
            await client.send_audio(pcm[len(pcm) // 2 :] + silence(0.3))
            stopped = await client.stop_and_wait()
        assert stopped["text"] == TEXT
        [upstream] = fake.live_connections  # never closed for idleness, never reconnected
        assert upstream.close_code == 1000


async def test_deepgram_unconfigured_start_names_the_variable(tmp_path: Path) -> None:
    async with serve_live(tmp_path, None) as (app, port):
        _user, key = await make_user(app)
        for kind in FRONT_ENDS:
            async with open_client(kind, port, key) as client:
                kind_, error = await client.start_and_wait()
                assert kind_ == "error" and error["code"] == "provider_unconfigured"
                assert error["missing"] == ["DEEPGRAM_API_KEY"] and "DEEPGRAM_API_KEY" in error["message"]


@pytest.mark.parametrize("kind", FRONT_ENDS)
async def test_final_text_is_saved_as_it_comes_and_billed_once_at_the_end(
    kind: str, fake: FakeDeepgram, tmp_path: Path, backend_env: dict[str, str]
) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake, backend_env, STREAM_FLUSH_S="0.1") as (app, port):
        user, key = await make_user(app)
        db = app.extensions["resources"].db()

        async def saved() -> str | None:
            row = await db.fetch_one("SELECT transcript FROM transcriptions WHERE user_id = :u", {"u": user.id})
            return row[0] if row is not None else None

        async with open_client(kind, port, key) as client:
            await client.start_and_wait()
            await client.send_audio(pcm[: len(pcm) // 2])
            await client.wait_for("transcript", lambda p: p["is_final"] and p["text"] == "world,")
            # Mid-stream, a crash would keep this: the finals so far, stored, and nothing billed yet.
            assert await wait_until(lambda: _equals(saved, "hello world,")) == "hello world,"
            assert await usage_rows(app, user.id) == []
            await client.send_audio(pcm[len(pcm) // 2 :] + silence(0.3))
            stopped = await client.stop_and_wait()
        assert await saved() == TEXT
        rows = await db.fetch_all("SELECT id FROM transcriptions WHERE user_id = :u", {"u": user.id})
        assert [r[0] for r in rows] == [stopped["transcription_id"]]  # the same row, completed
        assert len(await usage_rows(app, user.id)) == 1


async def _equals(probe: Callable[[], Awaitable[str | None]], wanted: str) -> str | None:
    value = await probe()
    return value if value == wanted else None
