"""FakeDeepgram's live endpoint (`GET /v1/listen` as a WebSocket), driven by deepgram-sdk 7 and a raw client.

Nothing here measures speed: audio is pushed as fast as the socket takes it, every time the fake reports is audio
time, and the only wall-clock knob (the idle timeout) is set small and only its outcome is asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import websockets
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakes import FakeDeepgram, FakeServerThread, run_fake, sine_wav
from fakes.deepgram import environment
from fakes.deepgram_live import NET_0001
from tests.support.live_audio import WORD_GAP, chunks, silence, spoken_raw, spoken_wav_path

HANG_GUARD = 20.0  # seconds; only ever reached when something is broken
CHUNK = 640  # 20 ms of 16 kHz linear16
TEXT = "hello world, how are you"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


def url(fake: FakeDeepgram, **params: Any) -> str:
    query = {"encoding": "linear16", "sample_rate": 16000, **params}
    return fake.base_url.replace("http", "ws", 1) + "/v1/listen?" + urlencode(query)


def connect(fake: FakeDeepgram, *, key: str | None = None, **params: Any) -> Any:
    return websockets.connect(url(fake, **params), additional_headers={"Authorization": f"Token {key or fake.api_key}"})


def tone(seconds: float) -> bytes:
    """Raw 16 kHz linear16 (the WAV header stripped)."""
    return sine_wav(seconds)[44:]


async def exchange(ws: Any, audio: bytes, *controls: dict[str, Any]) -> list[dict[str, Any]]:
    """Send `audio` in 20 ms chunks, then `controls` (and CloseStream); every message until the server closes."""

    async def send() -> None:
        for piece in chunks(audio, CHUNK):
            await ws.send(piece)
        for control in controls:
            await ws.send(json.dumps(control))
        await ws.send(json.dumps({"type": "CloseStream"}))

    sender = asyncio.create_task(send())
    messages = []
    async with asyncio.timeout(HANG_GUARD):
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        finally:
            await asyncio.gather(sender, return_exceptions=True)
    return messages


def of_type(messages: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def finals(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in of_type(messages, "Results") if m["is_final"]]


def final_text(messages: Iterable[dict[str, Any]]) -> str:
    return " ".join(t for m in finals(messages) if (t := m["channel"]["alternatives"][0]["transcript"]))


def register_speech(fake: FakeDeepgram, text: str = TEXT) -> bytes:
    """Register espeak-ng's 22 kHz WAV of `text` (one word per span) and return its 16 kHz linear16 rendering."""
    fake.register_live_words(spoken_wav_path(text, WORD_GAP).read_bytes(), text)
    return spoken_raw(text, word_gap=WORD_GAP)


# ----- the real SDK -------------------------------------------------------------------------------------------------


async def test_sdk_streams_registered_speech(fake):
    pcm = register_speech(fake)
    client = AsyncDeepgramClient(api_key=fake.api_key, environment=environment(fake.base_url), max_retries=0)
    received: list[Any] = []
    async with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000, interim_results="true", punctuate="true"
    ) as socket:

        async def send() -> None:
            for piece in chunks(pcm + silence(0.3), CHUNK):
                await socket.send_media(piece)
            await socket.send_close_stream()

        sender = asyncio.create_task(send())
        async with asyncio.timeout(HANG_GUARD):
            async for message in socket:  # ends at the normal close after CloseStream
                received.append(message)
        await sender
    results = [m for m in received if isinstance(m, ListenV1Results)]
    final = [r for r in results if r.is_final]
    assert " ".join(r.channel.alternatives[0].transcript for r in final) == TEXT
    assert any(not r.is_final for r in results)
    assert final[-1].speech_final is True
    words = [w for r in final for w in r.channel.alternatives[0].words]
    assert [w.word for w in words] == ["hello", "world", "how", "are", "you"]
    assert words[1].punctuated_word == "world,"
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))
    assert final[0].metadata.model_info.arch == "nova-3" and final[0].metadata.model_uuid
    metadata = received[-1]
    assert isinstance(metadata, ListenV1Metadata)
    assert metadata.sha256 == hashlib.sha256(pcm + silence(0.3)).hexdigest()
    assert metadata.duration == pytest.approx(len(pcm + silence(0.3)) / 32000, abs=1e-3)
    record = (await fake.wait_live_closed())[0]
    assert record.close_code == 1000 and record.closed_by == "server"
    assert record.control_types == ["CloseStream"]
    assert record.param("model") == "nova-3" and record.param("interim_results") == "true"
    assert record.header("Authorization") == f"Token {fake.api_key}"
    assert record.bytes_received == len(pcm) + 9600 and record.transcript == TEXT


async def test_sdk_bad_key_is_rejected_at_the_upgrade(fake):
    client = AsyncDeepgramClient(api_key="wrong", environment=environment(fake.base_url), max_retries=0)
    with pytest.raises(ApiError) as caught:
        async with client.listen.v1.connect(model="nova-3"):
            pass
    assert caught.value.status_code == 401
    assert fake.live_connection().status == 401 and fake.live_connection().closed_by == "refused"


# ----- upgrade checks --------------------------------------------------------------------------------------------


async def test_bad_key_is_401_with_deepgram_error_headers(fake):
    with pytest.raises(InvalidStatus) as caught:
        async with connect(fake, key="wrong"):
            pass
    response = caught.value.response
    assert response.status_code == 401
    body = json.loads(response.body)
    assert body["err_code"] == "INVALID_AUTH" and body["err_msg"] == "Invalid credentials."
    assert response.headers["dg-error"] == "Invalid credentials."
    assert response.headers["dg-request-id"] == body["request_id"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"sample_rate": None}, "sample_rate is required"),
        ({"encoding": "wav9"}, "`encoding`"),
        ({"sample_rate": "fast"}, "`sample_rate`"),
        ({"interim_results": "maybe"}, "`interim_results`"),
        ({"endpointing": "soon"}, "`endpointing`"),
        ({"utterance_end_ms": "-5"}, "`utterance_end_ms`"),
        ({"model": "nova-99"}, "No such model"),
    ],
)
async def test_bad_parameters_are_400_at_the_upgrade(fake, params, fragment):
    query = {"encoding": "linear16", "sample_rate": 16000, **params}
    target = (
        fake.base_url.replace("http", "ws", 1)
        + "/v1/listen?"
        + urlencode({k: v for k, v in query.items() if v is not None})
    )
    with pytest.raises(InvalidStatus) as caught:
        async with websockets.connect(target, additional_headers={"Authorization": f"Bearer {fake.api_key}"}):
            pass
    response = caught.value.response
    assert response.status_code == 400
    assert fragment in response.headers["dg-error"]
    assert json.loads(response.body)["err_msg"] == response.headers["dg-error"]


async def test_token_subprotocol_and_bearer_are_accepted(fake):
    target = url(fake)
    async with websockets.connect(target, subprotocols=["token", fake.api_key]) as ws:
        assert ws.subprotocol == "token"
    async with websockets.connect(target, additional_headers={"Authorization": f"Bearer {fake.api_key}"}):
        pass
    assert [r.status for r in await fake.wait_live_closed(2)] == [101, 101]


async def test_plain_get_is_not_an_upgrade(fake):
    async with aiohttp.ClientSession() as session, session.get(fake.base_url + "/v1/listen") as response:
        assert response.status == 400
        assert "WebSocket" in (await response.json())["err_msg"]


# ----- results ----------------------------------------------------------------------------------------------------


async def test_interim_and_final_results_have_deepgram_shapes(fake):
    async with connect(fake, interim_results="true", model="nova-2") as ws:
        messages = await exchange(ws, tone(1.0) + silence(0.5))
    results = of_type(messages, "Results")
    interim = [r for r in results if not r["is_final"]]
    assert len(interim) >= 3  # one per 200 ms of a growing span
    final = finals(messages)
    assert len(final) == 1 and final[0]["speech_final"] is True and final[0]["from_finalize"] is False
    assert set(final[0]) == {
        "type",
        "channel_index",
        "duration",
        "start",
        "is_final",
        "speech_final",
        "channel",
        "metadata",
        "from_finalize",
    }
    assert final[0]["channel_index"] == [0, 1] and final[0]["start"] == 0.0
    alternative = final[0]["channel"]["alternatives"][0]
    assert set(alternative) == {"transcript", "confidence", "words"}
    (word,) = alternative["words"]
    assert set(word) == {"word", "start", "end", "confidence"}  # no punctuated_word/speaker unless asked
    assert re.fullmatch(r"word\d+", word["word"]) and word["end"] == pytest.approx(1.0, abs=0.03)
    assert final[0]["metadata"]["model_info"] == {
        "name": "general-nova-2",
        "version": "2024-01-09.29447",
        "arch": "nova-2",
    }
    assert all(r["metadata"]["request_id"] == final[0]["metadata"]["request_id"] for r in results)
    assert messages[-1]["type"] == "Metadata"
    assert set(messages[-1]) == {
        "type",
        "transaction_key",
        "request_id",
        "sha256",
        "created",
        "duration",
        "channels",
        "models",
        "model_info",
    }


async def test_unknown_audio_words_are_deterministic(fake):
    audio = tone(0.4) + silence(0.3) + tone(0.7) + silence(0.3)
    texts = []
    for _ in range(2):
        async with connect(fake) as ws:
            texts.append(final_text(await exchange(ws, audio)))
    assert texts[0] == texts[1] and re.fullmatch(r"word\d+ word\d+", texts[0])


async def test_punctuate_and_diarize_shape_words(fake):
    pcm = register_speech(fake)
    async with connect(fake, punctuate="true", diarize="true") as ws:
        messages = await exchange(ws, pcm + silence(0.3))
    words = [w for m in finals(messages) for w in m["channel"]["alternatives"][0]["words"]]
    assert [w["punctuated_word"] for w in words] == TEXT.split()
    assert {w["speaker"] for w in words} == {0}
    async with connect(fake) as ws:
        assert final_text(await exchange(ws, pcm)) == "hello world how are you"


async def test_vad_and_utterance_end_only_when_asked(fake):
    audio = tone(0.3) + silence(0.2) + tone(0.3) + silence(1.3)
    async with connect(fake, vad_events="true", utterance_end_ms=1000) as ws:
        messages = await exchange(ws, audio)
    started = of_type(messages, "SpeechStarted")
    assert [s["channel"] for s in started] == [[0], [0]]
    assert started[0]["timestamp"] == pytest.approx(0.0, abs=0.03)
    assert started[1]["timestamp"] == pytest.approx(0.5, abs=0.03)
    (end,) = of_type(messages, "UtteranceEnd")
    assert end["channel"] == [0, 1] and end["last_word_end"] == pytest.approx(0.8, abs=0.03)
    types = [m["type"] for m in messages]
    assert types.index("UtteranceEnd") > max(i for i, m in enumerate(messages) if m["type"] == "Results")
    async with connect(fake) as ws:
        plain = await exchange(ws, audio)
    assert not of_type(plain, "SpeechStarted") and not of_type(plain, "UtteranceEnd")


@pytest.mark.parametrize(
    ("endpointing", "speech_finals"),
    [(None, [True, True]), ("300", [False, True]), ("false", [False, False])],
)
async def test_endpointing_decides_speech_final(fake, endpointing, speech_finals):
    params = {} if endpointing is None else {"endpointing": endpointing}
    async with connect(fake, **params) as ws:
        messages = await exchange(ws, tone(0.3) + silence(0.2) + tone(0.3) + silence(0.5))
    spoken = [m for m in finals(messages) if m["channel"]["alternatives"][0]["transcript"]]
    assert [m["speech_final"] for m in spoken] == speech_finals


async def test_finalize_flushes_the_open_span(fake):
    async with connect(fake, interim_results="true") as ws:
        messages = await exchange(ws, tone(0.5), {"type": "Finalize"}, {"type": "KeepAlive"})
    flushed = [m for m in finals(messages) if m["from_finalize"]]
    assert len(flushed) == 1 and flushed[0]["is_final"] is True
    assert re.fullmatch(r"word\d+", flushed[0]["channel"]["alternatives"][0]["transcript"])
    assert flushed[0]["duration"] == pytest.approx(0.5, abs=0.02)
    assert messages[-1]["type"] == "Metadata"
    assert fake.live_connection().control_types == ["Finalize", "KeepAlive", "CloseStream"]


async def test_close_stream_sends_metadata_then_closes_normally(fake):
    audio = tone(0.25) + silence(0.25)
    async with connect(fake) as ws:
        messages = await exchange(ws, audio)
        assert ws.close_code == 1000
    metadata = messages[-1]
    assert metadata["type"] == "Metadata" and metadata["transaction_key"] == "deprecated"
    assert metadata["sha256"] == hashlib.sha256(audio).hexdigest()
    assert metadata["duration"] == pytest.approx(0.5) and metadata["channels"] == 1
    assert metadata["request_id"] == fake.live_connection().request_id
    (model_uuid,) = metadata["models"]
    assert metadata["model_info"][model_uuid]["arch"] == "base"


async def test_empty_stream_metadata_and_schema_error(fake):
    async with connect(fake) as ws:
        await ws.send("not json")
        error = json.loads(await ws.recv())
        assert error["type"] == "Error" and error["variant"] == "SchemaError" and error["message"] == "not json"
        messages = await exchange(ws, b"")
    (metadata,) = messages
    assert metadata["duration"] == 0.0 and metadata["channels"] == 0
    assert metadata["sha256"] == hashlib.sha256(b"").hexdigest()


async def test_mulaw_8k_gives_the_registered_words(fake):
    register_speech(fake)  # registered from the 22 kHz WAV
    audio = spoken_raw(TEXT, rate=8000, encoding="mulaw", word_gap=WORD_GAP)
    async with connect(fake, encoding="mulaw", sample_rate=8000, punctuate="true") as ws:
        messages = await exchange(ws, audio + silence(0.3, rate=8000, encoding="mulaw"))
    assert final_text(messages) == TEXT


async def test_streamed_wav_header_is_read(fake):
    register_speech(fake)
    wav = spoken_wav_path(TEXT, WORD_GAP).read_bytes()  # 22.05 kHz, header and all, no encoding= parameter
    target = fake.base_url.replace("http", "ws", 1) + "/v1/listen?punctuate=true"
    async with websockets.connect(target, additional_headers={"Authorization": f"Token {fake.api_key}"}) as ws:
        messages = await exchange(ws, wav)
    assert final_text(messages) == TEXT


async def test_replayed_audio_gives_the_same_words_with_new_times(fake):
    pcm = register_speech(fake)
    spans = fake.live_spans(pcm)
    assert [words for _start, _end, words in spans] == TEXT.split()
    offset = int((spans[2][0] - 0.1) * 16000) * 2 + 74  # replay from just before "how", off the 10 ms grid
    async with connect(fake, punctuate="true") as ws:
        messages = await exchange(ws, pcm[offset:])
    words = [w for m in finals(messages) for w in m["channel"]["alternatives"][0]["words"]]
    assert [w["punctuated_word"] for w in words] == ["how", "are", "you"]
    assert words[0]["start"] == pytest.approx(spans[2][0] - offset / 32000, abs=0.03)


# ----- idle, keepalive, faults ------------------------------------------------------------------------------------


async def test_idle_stream_is_closed_with_net_0001(fake):
    fake.idle_timeout_s = 0.3
    async with connect(fake) as ws:
        await ws.send(tone(0.1))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(HANG_GUARD):
                while True:
                    await ws.recv()
        assert ws.close_code == 1011 and ws.close_reason == NET_0001
    record = (await fake.wait_live_closed())[0]
    assert record.close_code == 1011 and record.closed_by == "server" and record.close_reason == NET_0001


async def test_keepalive_keeps_the_stream_open_past_the_idle_timeout(fake):
    fake.idle_timeout_s = 1.0
    async with connect(fake) as ws:
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.6  # well past the 1 s timeout, with a KeepAlive every 50 ms
        while loop.time() < until:
            await ws.send(json.dumps({"type": "KeepAlive"}))
            await asyncio.sleep(0.05)
        messages = await exchange(ws, b"")
        assert ws.close_code == 1000
    assert [m["type"] for m in messages] == ["Metadata"]
    record = fake.live_connection()
    assert record.control_types.count("KeepAlive") >= 10 and record.close_code == 1000


async def test_error_close_after_some_bytes(fake):
    fake.live_fail_next(1011, "fake upstream failure", after_bytes=16000)
    async with connect(fake) as ws:
        with pytest.raises(ConnectionClosed) as caught:
            await exchange(ws, tone(2.0))
            await ws.recv()
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (1011, "fake upstream failure")
    record = (await fake.wait_live_closed())[0]
    assert record.bytes_received >= 16000 and record.close_code == 1011 and record.closed_by == "server"
    async with connect(fake) as ws:  # the fault was used up
        assert ws.close_code is None
        await exchange(ws, tone(0.1))
        assert ws.close_code == 1000


async def test_drop_next_cuts_tcp_without_close_frame(fake):
    fake.live_drop_next(after_bytes=3200)
    async with connect(fake) as ws:
        with pytest.raises(ConnectionClosed) as caught:
            await exchange(ws, tone(1.0))
            await ws.recv()
    assert caught.value.rcvd is None  # no close frame: the client reports 1006
    record = (await fake.wait_live_closed())[0]
    assert record.dropped and record.close_code == 1006


@pytest.mark.parametrize("how", ["close", "drop"])
async def test_faults_from_another_thread_reach_an_open_stream(how):
    with FakeServerThread(FakeDeepgram()) as served:
        fake = served
        assert isinstance(fake, FakeDeepgram)
        async with connect(fake) as ws:
            await ws.send(tone(0.2))
            await fake.wait_live(lambda rs: bool(rs) and rs[0].bytes_received > 0)
            if how == "close":
                worker = threading.Thread(target=fake.live_close_all, kwargs={"code": 1011, "reason": "bye"})
            else:
                worker = threading.Thread(target=fake.live_drop_all)
            worker.start()
            worker.join(HANG_GUARD)
            with pytest.raises(ConnectionClosed) as caught:
                async with asyncio.timeout(HANG_GUARD):
                    while True:
                        await ws.recv()
        record = (await fake.wait_live_closed())[0]
    if how == "close":
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011 and record.close_reason == "bye"
    else:
        assert caught.value.rcvd is None and record.dropped


async def test_fail_next_armed_mid_stream_from_another_thread():
    with FakeServerThread(FakeDeepgram()) as served:
        fake = served
        assert isinstance(fake, FakeDeepgram)
        async with connect(fake) as ws:
            await ws.send(tone(0.1))
            await fake.wait_live(lambda rs: bool(rs) and rs[0].bytes_received > 0)
            worker = threading.Thread(target=fake.live_fail_next, kwargs={"code": 1011, "after_bytes": 8000})
            worker.start()
            worker.join(HANG_GUARD)
            assert fake.live_connection().open
            with pytest.raises(ConnectionClosed) as caught:
                await exchange(ws, tone(1.0))
                await ws.recv()
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1011
        assert (await fake.wait_live_closed())[0].bytes_received >= 8000


async def test_client_close_and_reset_are_recorded(fake):
    async with connect(fake) as ws:
        await ws.send(tone(0.1))
    record = (await fake.wait_live_closed())[0]
    assert record.closed_by == "client" and record.close_code == 1000 and record.bytes_received == 3200
    assert fake.requests_to("/v1/listen", "GET")[0].status == 101
    fake.reset()
    assert fake.live_connections == [] and fake.requests == []
