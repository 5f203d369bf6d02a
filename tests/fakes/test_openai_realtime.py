"""FakeRealtime through the real openai SDK realtime client and a raw websockets client.

Nothing here measures wall time: the fake's behaviour is driven by the audio it is sent, so the tests assert
on event order and content; timeouts are only hang guards.
"""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI

from fakes import FakeRealtime, FakeServerThread, g711, run_fake
from fakes.openai_realtime import BETA_MESSAGE, expired_message
from tests.support.audio import spoken

GUARD_S = 20
SPEECH = "what is the weather in Paris"
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with run_fake(FakeRealtime(reply_audio_ms=1000)) as running:
        yield running


def sdk(fake: FakeRealtime, key: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=key or fake.api_key, base_url=fake.base_url + "/v1", websocket_base_url=fake.ws_url, max_retries=0
    )


def speech(text: str, fmt: str, silence_s: float = 0.8) -> bytes:
    """`text` spoken by espeak-ng, then silence, encoded as the session's input format."""
    samples, rate = g711.read_wav(spoken(text))
    target = 24_000 if fmt == "audio/pcm" else 8_000
    pcm = g711.to_int16(np.concatenate([g711.resample(samples, rate, target), np.zeros(int(silence_s * target))]))
    if fmt == "audio/pcmu":
        return g711.ulaw_encode(pcm)
    if fmt == "audio/pcma":
        return g711.alaw_encode(pcm)
    return g711.pcm16_encode(pcm)


def decode(fmt: str, data: bytes) -> np.ndarray:
    if fmt == "audio/pcmu":
        return g711.ulaw_decode(data)
    if fmt == "audio/pcma":
        return g711.alaw_decode(data)
    return g711.pcm16_decode(data)


async def send_audio(conn: Any, audio: bytes, fmt: str) -> None:
    chunk = 4800 if fmt == "audio/pcm" else 1600  # 100 ms
    for start in range(0, len(audio), chunk):
        await conn.input_audio_buffer.append(audio=base64.b64encode(audio[start : start + chunk]).decode())


async def events_until(conn: Any, last: str, sink: list[Any] | None = None) -> list[Any]:
    """Events up to and including the first `last` (SDK connection); `sink` also collects them."""
    seen: list[Any] = []
    async with asyncio.timeout(GUARD_S):
        while True:
            event = await conn.recv()
            seen.append(event)
            if sink is not None:
                sink.append(event)
            if event.type == last:
                return seen


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def session_update(fmt: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "realtime",
        "instructions": "You are a test.",
        "audio": {
            "input": {
                "format": {"type": fmt},
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
            },
            "output": {"format": {"type": fmt}, "voice": "cedar"},
        },
        **extra,
    }


# ----- connection, auth, session ---------------------------------------------------------------------


async def test_auth_is_a_bearer_key_checked_at_the_upgrade(fake: FakeRealtime) -> None:
    url = fake.ws_url + "/realtime?model=gpt-realtime"
    with pytest.raises(websockets.exceptions.InvalidStatus) as missing:
        await websockets.connect(url)
    assert missing.value.response.status_code == 401
    assert "didn't provide an API key" in json.loads(missing.value.response.body)["error"]["message"]
    with pytest.raises(websockets.exceptions.InvalidStatus) as wrong:
        async with sdk(fake, key="sk-wrong-key-0000").realtime.connect(model="gpt-realtime"):
            pass
    assert wrong.value.response.status_code == 401
    error = json.loads(wrong.value.response.body)["error"]
    assert error["code"] == "invalid_api_key" and error["message"].startswith("Incorrect API key provided: sk-")
    fake.fail_next(503)
    with pytest.raises(websockets.exceptions.InvalidStatus) as unavailable:
        await websockets.connect(url, additional_headers={"Authorization": f"Bearer {fake.api_key}"})
    assert unavailable.value.response.status_code == 503
    upgrades = fake.requests_to("/v1/realtime")
    assert [r.status for r in upgrades] == [401, 401, 503] and upgrades[1].param("model") == "gpt-realtime"


async def test_session_created_then_updated_in_the_ga_shape(fake: FakeRealtime) -> None:
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        created = await conn.recv()
        assert created.type == "session.created" and created.event_id.startswith("event_")
        session = created.session
        assert session.type == "realtime" and session.model == "gpt-realtime"
        assert session.audio.input.format.type == "audio/pcm" and session.audio.input.format.rate == 24000
        assert session.audio.input.turn_detection.type == "server_vad"
        assert session.output_modalities == ["audio"]

        await conn.session.update(session=session_update("audio/pcmu", tools=[TOOL]))
        updated = await conn.recv()
        assert updated.type == "session.updated"
        assert updated.session.audio.input.format.type == "audio/pcmu"
        assert (
            updated.session.audio.output.format.type == "audio/pcmu" and updated.session.audio.output.voice == "cedar"
        )
        detection = updated.session.audio.input.turn_detection
        assert (detection.silence_duration_ms, detection.threshold, detection.create_response) == (400, 0.5, True)
        assert updated.session.instructions == "You are a test." and updated.session.tools[0].name == "get_weather"

        # beta-shaped and incomplete updates get the API's errors; the session stays usable
        await conn.send(
            {
                "type": "session.update",
                "event_id": "evt_beta",
                "session": {"type": "realtime", "modalities": ["audio", "text"]},
            }
        )
        beta = await conn.recv()
        assert beta.type == "error" and beta.error.code == "unknown_parameter"
        assert beta.error.param == "session.modalities" and beta.error.event_id == "evt_beta"
        await conn.send({"type": "session.update", "session": {"instructions": "no type"}})
        untyped = await conn.recv()
        assert untyped.error.code == "missing_required_parameter" and untyped.error.param == "session.type"

    record = fake.session()
    assert record.model == "gpt-realtime" and record.query == {"model": ["gpt-realtime"]}
    assert record.header("Authorization") == f"Bearer {fake.api_key}" and record.beta_header is None
    assert record.client_event_types == ["session.update", "session.update", "session.update"]
    assert record.config["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert record.closed_by == "client" and record.close_code == 1000


# ----- a spoken turn -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcm", "audio/pcma"])
async def test_speech_turn_is_detected_transcribed_and_answered(fake: FakeRealtime, fmt: str) -> None:
    fake.register_utterance(SPEECH)
    fake.register_reply("weather", "It is sunny in Paris today.", audio_ms=700)
    audio = speech(SPEECH, fmt)
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await events_until(conn, "session.created")
        await conn.session.update(session=session_update(fmt))
        await events_until(conn, "session.updated")
        await send_audio(conn, audio, fmt)
        events = await events_until(conn, "response.done")

    order = types(events)
    turn = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert order[: len(turn)] == turn
    assert order[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    started, stopped, committed = events[0], events[1], events[2]
    assert started.item_id == stopped.item_id == committed.item_id and started.item_id.startswith("item_")
    assert 0 <= started.audio_start_ms < stopped.audio_end_ms
    completed = events[6]
    assert completed.transcript == SPEECH and completed.item_id == started.item_id
    assert completed.usage.type == "tokens" and completed.usage.total_tokens > 0

    deltas = [e for e in events if e.type == "response.output_audio.delta"]
    audio_out = b"".join(base64.b64decode(e.delta) for e in deltas)
    bytes_per_ms = 48 if fmt == "audio/pcm" else 8
    assert len(deltas) == 7 and len(audio_out) == 700 * bytes_per_ms  # 100 ms deltas
    assert g711.rms(decode(fmt, audio_out)) > 0.1  # a tone, not silence
    response_id = events[7].response.id
    assert {e.response_id for e in deltas} == {response_id}
    transcript = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert transcript == "It is sunny in Paris today."
    done = events[-1].response
    assert done.id == response_id and done.status == "completed" and done.object == "realtime.response"
    assert done.output[0].content[0].transcript == transcript and done.audio.output.format.type == fmt
    usage = done.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_token_details.audio_tokens > 0 and usage.input_token_details.cached_tokens == 0
    assert usage.output_token_details.audio_tokens == 14 and usage.output_token_details.text_tokens > 0

    record = fake.session()
    assert bytes(record.audio_in) == audio and record.transcripts == [SPEECH]
    assert [i["role"] for i in record.items] == ["user", "assistant"]
    assert record.items[0]["content"][0]["transcript"] == SPEECH
    assert record.responses[0]["status"] == "completed" and not record.fake_errors


async def test_transcripts_follow_registration_order_and_duration(fake: FakeRealtime) -> None:
    fake.register_utterance("a long sentence", min_ms=1500)
    fake.register_utterance("first short one", max_ms=1500)
    long_audio = speech("book a table for two tomorrow at seven", "audio/pcmu")
    short_audio = speech("hello", "audio/pcmu")
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session_update("audio/pcmu"))
        await events_until(conn, "session.updated")
        transcripts = []
        for audio in (short_audio, long_audio, short_audio):
            await send_audio(conn, audio, "audio/pcmu")
            events = await events_until(conn, "response.done")
            transcripts += [
                e.transcript for e in events if e.type == "conversation.item.input_audio_transcription.completed"
            ]
    assert transcripts[:2] == ["first short one", "a long sentence"]
    assert transcripts[2].startswith("Fake utterance 3 of ") and transcripts[2].endswith(" ms.")


async def test_function_call_round_trip(fake: FakeRealtime) -> None:
    fake.register_utterance(SPEECH)
    fake.register_tool_call("weather", "get_weather", {"city": "Paris"})
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session_update("audio/pcmu", tools=[TOOL]))
        await events_until(conn, "session.updated")
        await send_audio(conn, speech(SPEECH, "audio/pcmu"), "audio/pcmu")
        call_events = await events_until(conn, "response.done")
        assert "response.output_audio.delta" not in types(call_events)
        added = next(e for e in call_events if e.type == "response.output_item.added")
        assert added.item.type == "function_call" and added.item.name == "get_weather"
        arguments = "".join(e.delta for e in call_events if e.type == "response.function_call_arguments.delta")
        done_args = next(e for e in call_events if e.type == "response.function_call_arguments.done")
        assert json.loads(arguments) == json.loads(done_args.arguments) == {"city": "Paris"}
        item = call_events[-1].response.output[0]
        assert item.type == "function_call" and item.call_id == done_args.call_id and item.call_id.startswith("call_")

        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": item.call_id, "output": '{"sky": "clear"}'}
        )
        acknowledged = await events_until(conn, "conversation.item.done")
        assert types(acknowledged) == ["conversation.item.added", "conversation.item.done"]
        assert acknowledged[0].previous_item_id == item.id
        await conn.response.create()
        reply = await events_until(conn, "response.done")

    assert "response.output_audio.delta" in types(reply)
    assert reply[-1].response.output[0].content[0].transcript == 'Fake reply after get_weather: {"sky": "clear"}'
    record = fake.session()
    assert [i["type"] for i in record.items] == ["message", "function_call", "function_call_output", "message"]
    assert record.client_event_types[-2:] == ["conversation.item.create", "response.create"]


async def test_speech_during_a_response_cancels_it(fake: FakeRealtime) -> None:
    fake.stall_responses(after_deltas=2)  # the reply is still streaming when the caller talks again
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session_update("audio/pcmu"))
        await events_until(conn, "session.updated")
        await send_audio(conn, speech("hello", "audio/pcmu"), "audio/pcmu")
        first = await events_until(conn, "response.created")
        streamed: list[Any] = []
        async with asyncio.timeout(GUARD_S):
            while sum(e.type == "response.output_audio.delta" for e in streamed) < 2:
                streamed.append(await conn.recv())
        await send_audio(conn, speech("stop please", "audio/pcmu"), "audio/pcmu")
        interrupted = await events_until(conn, "response.done")
        fake.release_responses()
        second = await events_until(conn, "response.done")

    assert types(interrupted)[0] == "input_audio_buffer.speech_started"
    cancelled = interrupted[-1].response
    assert cancelled.id == first[-1].response.id and cancelled.status == "cancelled"
    assert cancelled.status_details.type == "cancelled" and cancelled.status_details.reason == "turn_detected"
    assert cancelled.output[0].status == "incomplete"
    assert "response.output_audio.delta" not in types(interrupted)
    assert "input_audio_buffer.speech_stopped" in types(second) and second[-1].response.status == "completed"
    assert [r["status"] for r in fake.session().responses] == ["cancelled", "completed"]


async def test_truncate_beyond_the_generated_audio_is_the_real_error(fake: FakeRealtime) -> None:
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session_update("audio/pcmu"))
        await events_until(conn, "session.updated")
        await send_audio(conn, speech("hello", "audio/pcmu"), "audio/pcmu")
        done = (await events_until(conn, "response.done"))[-1].response
        item_id = done.output[0].id
        await conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=1500, event_id="evt_too_far"
        )
        too_far = await conn.recv()
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=400)
        truncated = await conn.recv()
        await conn.conversation.item.truncate(item_id="item_missing", content_index=0, audio_end_ms=10)
        missing = await conn.recv()
        await conn.response.cancel()
        not_active = await conn.recv()

    assert too_far.type == "error"
    assert too_far.error.type == "invalid_request_error" and too_far.error.code == "invalid_value"
    assert too_far.error.message == "Audio content of 1000ms is already shorter than 1500ms"
    assert too_far.error.event_id == "evt_too_far"
    assert truncated.type == "conversation.item.truncated" and truncated.audio_end_ms == 400
    assert missing.type == "error" and missing.error.code == "item_truncate_invalid_item_id"
    assert not_active.error.code == "response_cancel_not_active"
    assert not_active.error.message == "Cancellation failed: no active response found"
    record = fake.session()
    assert record.truncations == [
        {"item_id": item_id, "content_index": 0, "audio_end_ms": 400, "audio_ms_before": 1000}
    ]
    assert record.items[-1]["content"][0]["transcript"] == ""
    assert [e["code"] for e in record.errors] == [
        "invalid_value",
        "item_truncate_invalid_item_id",
        "response_cancel_not_active",
    ]


async def test_replayed_items_and_ignored_assistant_audio(fake: FakeRealtime) -> None:
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
        )
        await events_until(conn, "session.updated")
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]}
        )
        await events_until(conn, "conversation.item.done")
        await conn.conversation.item.create(
            item={"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]}
        )
        await events_until(conn, "conversation.item.done")
        # the beta content type: accepted without an event, and left out of the conversation
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "old shape"}]},
            }
        )
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me more"}]}
        )
        added = await events_until(conn, "conversation.item.done")
        await conn.response.create()
        response = await events_until(conn, "response.done")

    assert added[0].type == "conversation.item.added"  # nothing was sent for the ignored item
    assert "response.output_text.delta" in types(response) and "response.output_audio.delta" not in types(response)
    assert response[-1].response.output[0].content[0].text == "Fake reply to: Tell me more"
    record = fake.session()
    assert [(i["role"], i["content"][0]["type"]) for i in record.items] == [
        ("user", "input_text"),
        ("assistant", "output_text"),
        ("user", "input_text"),
        ("assistant", "output_text"),
    ]
    assert record.ignored_items[0]["content"] == [{"type": "text", "text": "old shape"}]


async def test_manual_commit_without_turn_detection(fake: FakeRealtime) -> None:
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        await events_until(conn, "session.updated")
        await conn.input_audio_buffer.commit()
        empty = await conn.recv()
        await send_audio(conn, speech("hello", "audio/pcm"), "audio/pcm")
        await conn.input_audio_buffer.commit()
        committed = await events_until(conn, "conversation.item.done")
    assert empty.error.code == "input_audio_buffer_commit_empty"
    assert "buffer only has 0.00ms of audio" in empty.error.message
    assert types(committed) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]
    assert fake.session().transcripts[0].startswith("Fake utterance 1 of ")


# ----- the end of a session ---------------------------------------------------------------------------


async def raw_connect(fake: FakeRealtime, **headers: str) -> websockets.ClientConnection:
    return await websockets.connect(
        fake.ws_url + "/realtime?model=gpt-realtime",
        additional_headers={"Authorization": f"Bearer {fake.api_key}", **headers},
    )


async def drain(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes (whatever the close code)."""
    messages = []
    async with asyncio.timeout(GUARD_S):
        try:
            while True:
                messages.append(json.loads(await ws.recv()))
        except websockets.exceptions.ConnectionClosed:
            return messages


async def test_session_expired_then_close_1001(fake: FakeRealtime) -> None:
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await events_until(conn, "session.created")
        fake.expire()
        error = await conn.recv()
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            async with asyncio.timeout(GUARD_S):
                await conn.recv_bytes()
    assert error.type == "error" and error.error.code == "session_expired"
    assert error.error.type == "invalid_request_error"
    assert error.error.message == "Your session hit the maximum duration of 60 minutes."
    assert closed.value.rcvd.code == 1001 and closed.value.rcvd.reason == error.error.message
    record = fake.session()
    assert record.closed_by == "server:session_expired" and record.close_code == 1001


async def test_max_session_s_expires_by_itself() -> None:
    async with run_fake(FakeRealtime(max_session_s=0.2)) as fake:
        ws = await raw_connect(fake)
        messages = await drain(ws)
        assert [m["type"] for m in messages] == ["session.created", "error"]
        assert messages[1]["error"]["message"] == expired_message(0.2)
        assert ws.close_code == 1001


async def test_drop_closes_tcp_without_a_close_frame(fake: FakeRealtime) -> None:
    ws = await raw_connect(fake)
    assert json.loads(await ws.recv())["type"] == "session.created"
    fake.drop()
    with pytest.raises(websockets.exceptions.ConnectionClosedError) as dropped:
        async with asyncio.timeout(GUARD_S):
            await ws.recv()
    assert dropped.value.rcvd is None  # no close frame: the client reports 1006
    assert fake.session().closed_by == "drop"


async def test_error_close(fake: FakeRealtime) -> None:
    ws = await raw_connect(fake)
    await ws.recv()
    fake.close_with_error(1011)
    messages = await drain(ws)
    assert messages[0]["error"]["type"] == "server_error" and ws.close_code == 1011
    assert fake.session().closed_by == "server:error"


async def test_beta_header_is_refused_like_the_ga_endpoint(fake: FakeRealtime) -> None:
    ws = await raw_connect(fake, **{"OpenAI-Beta": "realtime=v1"})
    messages = await drain(ws)
    assert len(messages) == 1 and messages[0]["type"] == "error"
    assert messages[0]["error"]["code"] == "beta_api_shape_disabled" and messages[0]["error"]["message"] == BETA_MESSAGE
    assert ws.close_code == 4000 and ws.close_reason == "invalid_request_error.beta_api_shape_disabled"
    record = fake.session()
    assert record.beta_header == "realtime=v1" and record.rejected == "beta_api_shape_disabled"
    assert record.client_events == []


async def test_model_is_required(fake: FakeRealtime) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as missing:
        await websockets.connect(
            fake.ws_url + "/realtime", additional_headers={"Authorization": f"Bearer {fake.api_key}"}
        )
    assert missing.value.response.status_code == 400


# ----- the codec the fakes use ----------------------------------------------------------------------------


def test_g711_matches_the_reference_codec_bit_for_bit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    every_sample = np.arange(-32768, 32768, dtype=np.int16)
    raw = every_sample.astype("<i2").tobytes()
    assert g711.ulaw_encode(every_sample) == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(every_sample) == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert g711.pcm16_encode(g711.ulaw_decode(codes)) == audioop.ulaw2lin(codes, 2)
    assert g711.pcm16_encode(g711.alaw_decode(codes)) == audioop.alaw2lin(codes, 2)


def test_resample_and_wav_round_trip() -> None:
    tone = g711.tone(500, 22_050, freq=300)
    samples, rate = g711.read_wav(g711.write_wav(tone, 22_050))
    assert rate == 22_050 and len(samples) == len(tone)
    down = g711.resample(samples, 22_050, 8_000)
    assert len(down) == 4000 and abs(g711.rms(g711.to_int16(down)) - g711.rms(tone)) < 0.02
    assert len(g711.wav_to_ulaw(g711.write_wav(tone, 22_050))) == 4000


async def test_threaded_fake_is_controlled_from_another_thread() -> None:
    """The service runs in a subprocess against a fake in its own thread; tests steer it from theirs."""
    with FakeServerThread(FakeRealtime()) as threaded:
        fake: FakeRealtime = threaded  # type: ignore[assignment]
        fake.register_utterance("hello from a thread")
        async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session=session_update("audio/pcmu"))
            await events_until(conn, "session.updated")
            await send_audio(conn, speech("hello", "audio/pcmu"), "audio/pcmu")
            events = await events_until(conn, "response.done")
            assert fake.open_sessions == [fake.session().id]
            fake.drop()
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                async with asyncio.timeout(GUARD_S):
                    await conn.recv_bytes()
        assert "hello from a thread" in [getattr(e, "transcript", None) for e in events]
        assert fake.session().closed_by == "drop"


async def test_registered_reply_audio_is_spoken_in_the_output_format(fake: FakeRealtime) -> None:
    reply_wav = spoken("hi there")
    fake.register_reply("hello", "Hi there!", audio=reply_wav)
    fake.register_utterance("hello")
    async with sdk(fake).realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session=session_update("audio/pcmu"))
        await events_until(conn, "session.updated")
        await send_audio(conn, speech("hello", "audio/pcmu"), "audio/pcmu")
        events = await events_until(conn, "response.done")
    deltas = [base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"]
    assert b"".join(deltas) == g711.wav_to_ulaw(reply_wav)
    assert {len(d) for d in deltas[:-1]} == {800}
