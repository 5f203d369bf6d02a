"""Ending calls: `end_call` (after the goodbye has played), the tenant's call-length cap, Twilio's `stop` and a
dropped socket (the provider session ends with the call), the drain; DTMF reaching the model; the PCM16 path."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp

from fakes import FakeRealtime, FakeTwilio, run_fake
from quart_app.audio.codecs import DELAY_8K
from quart_app.calls.control import TwilioCallControl
from quart_app.db import call_segments, call_transcripts, calls
from tests.calls.harness import ACCOUNT_SID, AUTH_TOKEN, eventually, phone_env

TURNS = {"type": "server_vad", "silence_duration_ms": 200}


def _hangups(twilio: FakeTwilio, call_sid: str) -> list[dict[str, list[str]]]:
    return [r.fields for r in twilio.requests_to(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json", "POST")]


async def test_end_call_hangs_up_after_the_goodbye_has_played(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=400)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_utterance("That's all, goodbye.")
        fake.register_tool_call("goodbye", "end_call", {"reason": "caller is done"}, reply="Goodbye, have a nice day!")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.say(call, 300)
        await env.run(call, lambda: call.ended or not call.connected)
        await eventually(session.ended.is_set)

        record = fake.session()
        # end_call's output went back, then a response so the agent says goodbye
        outputs = [e["item"] for e in record.client_events_of("conversation.item.create")]
        assert [o["type"] for o in outputs] == ["function_call_output"]
        assert record.responses[-1]["output"][0]["content"][0]["transcript"] == "Goodbye, have a nice day!"
        # the hang-up came once the goodbye had played: its mark was echoed after every audio chunk
        hangup_mark = next(m for m in call.marks if m.name.startswith("hangup"))
        assert hangup_mark.position == len(call.received_ulaw) and not hangup_mark.cleared
        assert call.played_total == len(call.received_ulaw) > 0
        assert _hangups(env.twilio, call.call_sid) == [{"Status": ["completed"]}]
        assert env.twilio.calls[call.call_sid]["status"] == "completed"
        assert call.stream.closed_by == "twilio"
        assert session.end_reason == "agent_end_call"
        stored = await calls.get_call(env.db, call.call_sid)
        assert stored is not None and stored.end_reason == "agent_end_call"


async def test_already_ended_call_counts_as_hung_up(tmp_path: Path) -> None:
    async with run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as twilio, aiohttp.ClientSession() as http:
        control = TwilioCallControl(http, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, base_url=twilio.base_url)
        assert await control.hang_up("CA" + "0" * 32)  # 404 / 20404: it is over, which is what we wanted
        wrong = TwilioCallControl(http, account_sid=ACCOUNT_SID, auth_token="wrong", base_url=twilio.base_url)
        assert not await wrong.hang_up("CA" + "0" * 32)


async def test_call_length_cap_wraps_up_then_ends(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake, REALTIME_WRAPUP_S="8") as env:
        tenant = await env.tenant(turn_detection=TURNS, max_call_s=10)
        fake.register_tool_call("wrap up", "end_call", {}, reply="Sorry, we are out of time. Goodbye!")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.run(call, lambda: call.ended or not call.connected, max_ms=12_000)
        await eventually(session.ended.is_set)
        record = fake.session()
        system = [
            e["item"]["content"][0]["text"]
            for e in record.client_events_of("conversation.item.create")
            if e["item"].get("role") == "system"
        ]
        assert len(system) == 1 and "maximum length" in system[0] and "end_call" in system[0]
        wrapped_at = next(i.call_ms for i in session.transcript if i.role == "system")
        assert 2000 <= wrapped_at < 10_000  # shortly before the cap (10 s), not after it
        assert record.responses[-1]["output"][0]["content"][0]["transcript"] == "Sorry, we are out of time. Goodbye!"
        assert _hangups(env.twilio, call.call_sid) == [{"Status": ["completed"]}]
        assert session.end_reason == "max_duration"


async def test_call_length_cap_is_enforced_when_the_agent_does_not_end(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake, REALTIME_WRAPUP_S="2") as env:
        tenant = await env.tenant(turn_detection=TURNS, max_call_s=10)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.run(call, lambda: call.ended or not call.connected, max_ms=12_000)
        await eventually(session.ended.is_set)
        assert session.now_ms >= 10_000 - 20
        assert _hangups(env.twilio, call.call_sid) == [{"Status": ["completed"]}]
        assert session.end_reason == "max_duration"


async def test_dtmf_reaches_the_model_as_user_input(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_reply("pressed 5", "You pressed five.")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        lines = env.feature.health_lines()  # what the feature logs every REALTIME_HEALTH_LOG_S
        assert len(lines) == 1 and call.call_sid in lines[0] and "frames in" in lines[0] and "marks pending" in lines[0]
        await call.send_dtmf("5")
        await env.run(call, lambda: len(fake.session().responses) == 1 and not session.playback.playing(session.now_ms))
        record = fake.session()
        created = record.client_events_of("conversation.item.create")
        assert created[0]["item"]["role"] == "user"
        assert created[0]["item"]["content"] == [{"type": "input_text", "text": "The caller pressed 5 on the keypad."}]
        types = record.client_event_types
        assert types.index("response.create") > types.index("conversation.item.create")
        assert record.responses[0]["output"][0]["content"][0]["transcript"] == "You pressed five."
        assert call.played_total > 0
        await call.hangup()
        await eventually(session.ended.is_set)
        items = await call_transcripts.items_of(env.db, call.call_sid)
        assert [(i.role, i.text) for i in items] == [("dtmf", "5"), ("assistant", "You pressed five.")]


async def test_a_dropped_socket_ends_the_provider_session(tmp_path: Path) -> None:
    async with phone_env(tmp_path) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        assert env.realtime.open_sessions == [env.realtime.session().id]
        assert call._ws is not None
        await call._ws.close()  # no `stop`: the connection just goes away
        await eventually(session.ended.is_set)
        await eventually(lambda: env.realtime.open_sessions == [])
        assert session.end_reason == "stream_closed"
        assert env.realtime.session().closed_by == "client"


async def test_linear_pcm_path(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake, REALTIME_AUDIO_FORMAT="pcm16") as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_utterance("Hello there.")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.say(call, 300)
        await env.run(call, lambda: len(fake.session().responses) == 1 and not session.playback.playing(session.now_ms))
        record = fake.session()
        update = record.client_events_of("session.update")[0]["session"]
        assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert record.transcripts == ["Hello there."]
        sent = sum(len(base64.b64decode(m["media"]["payload"])) for m in call.sent_events("media"))
        assert len(record.audio_in) == 6 * sent  # 3x the samples, 2 bytes each
        # 300 ms of 24 kHz reply reached the caller as 8 kHz μ-law (the resampler's 3 ms tail included)
        assert len(call.received_ulaw) == 300 * 8 + DELAY_8K
        assert call.played_total == len(call.received_ulaw)


async def test_drain_moves_a_live_call_when_another_instance_is_ready(tmp_path: Path) -> None:
    """#22: the drain replaces the call's TwiML with the resume stream; Twilio's `stop` ends it here as `moved`
    (the two-instance move, end to end, is tests/calls/test_move.py)."""
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake, INSTANCE_ID="draining-one") as env:
        tenant = await env.tenant(turn_detection=TURNS)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await call_segments.heartbeat(env.db, "another-one", call_segments.READY, 60)
        loop = asyncio.get_running_loop()
        drain = asyncio.create_task(env.feature.drain(loop.time() + 30))
        await eventually(session.ended.is_set)
        await asyncio.wait_for(drain, 10)
        assert session.end_reason == "moved"
        assert env.feature.refusal() == "draining"
        (update,) = _hangups(env.twilio, call.call_sid)
        document = update["Twiml"][0]
        assert '<Stream url="wss://voice.example.com/twilio/media-stream">' in document
        assert f'<Parameter name="resume_call" value="{call.call_sid}"/>' in document
        assert f'<Parameter name="tenant" value="{tenant.id}"/>' in document
        assert len(call.streams) == 2 and call.streams[0].closed_by == "twilio"  # Twilio stopped the old stream
        assert call.streams[1].custom_parameters["resume_call"] == call.call_sid
        assert fake.open_sessions == []  # the old Realtime session was closed
        segments = await call_segments.segments_of(env.db, call.call_sid)
        assert [(s.instance_id, s.end_reason) for s in segments[:1]] == [("draining-one", "moved")]


async def test_drain_without_another_instance_ends_calls_with_the_apology_at_the_limit(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(env.feature.drain(loop.time() + 2.5), 30)
        assert session.end_reason == "drain_limit"
        (update,) = _hangups(env.twilio, call.call_sid)
        assert "technical problem" in update["Twiml"][0] and "<Stream" not in update["Twiml"][0]
        assert fake.open_sessions == []
        assert env.feature.refusal() == "draining"
