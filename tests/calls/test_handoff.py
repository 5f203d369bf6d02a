"""No call-length limit: before the provider's session limit the call moves to a new session at a turn boundary
(configured the same, given the conversation so far, caller audio buffered and delivered), and a session the
provider closes is recovered the same way, once."""

from __future__ import annotations

import base64
from pathlib import Path

from fakes import FakeRealtime, TwilioMediaCall
from quart_app.db import call_transcripts, calls
from tests.calls.harness import ACCOUNT_SID, AUTH_TOKEN, PhoneEnv, eventually, phone_env, voice

TURNS = {"type": "server_vad", "silence_duration_ms": 200}


def _sent_audio(call) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in call.sent_events("media"))


def _replayed(record) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    found = []
    for event in record.client_events_of("conversation.item.create"):
        item = event["item"]
        if item["type"] == "message":
            part = item["content"][0]
            found.append((item["role"], part["type"], part["text"]))
    return found


async def _exchange(env: PhoneEnv, call, session, answers: int) -> None:  # type: ignore[no-untyped-def]
    """The caller asks; wait until the provider has given `answers` answers in all and they have played."""
    await env.say(call, 300)
    await env.run(
        call,
        lambda: (
            sum(len(s.responses) for s in env.realtime.sessions) >= answers
            and not session.playback.playing(session.now_ms)
        ),
    )


async def test_handoff_across_two_session_limits_loses_no_caller_audio(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake, REALTIME_MAX_SESSION_S="1") as env:
        tenant = await env.tenant(turn_detection=TURNS, knowledge_enabled=True)
        for word in ("First", "Second", "Third"):
            fake.register_utterance(f"{word} question.")
            fake.register_reply(f"{word.lower()} question", f"{word} answer.")
        gate = env.gate()
        call = await env.dial(tenant)
        session = await env.wait_live(call)

        await _exchange(env, call, session, 1)
        # the session limit falls after this turn: the switch is held open while the caller starts talking
        gate.hold = True
        await env.run(call, lambda: session.phase == "switching")
        assert session.now_ms - session.session_started_ms >= 1000
        await call.play_ulaw(voice(300), wait=False)
        await env.tick(call, 400)
        assert session.phase == "switching" and len(session._buffer) >= 20
        gate.release()
        await env.settle(call)
        assert session.phase == "live" and session.sessions_opened == 2 and not session._buffer
        await env.run(
            call,
            lambda: (
                len(fake.sessions) == 2
                and len(fake.sessions[1].responses) == 1
                and not session.playback.playing(session.now_ms)
            ),
        )
        # the second limit: switched at the next turn boundary without help
        await env.run(call, lambda: session.sessions_opened == 3)
        await _exchange(env, call, session, 3)
        await call.hangup()
        await eventually(session.ended.is_set)

        sessions = fake.sessions
        assert len(sessions) == 3
        assert [s.transcripts for s in sessions] == [["First question."], ["Second question."], ["Third question."]]
        assert [s.responses[0]["output"][0]["content"][0]["transcript"] for s in sessions] == [
            "First answer.",
            "Second answer.",
            "Third answer.",
        ]
        # every session configured byte-for-byte the same (instructions and tools stay cache-friendly)
        updates = [s.client_events_of("session.update") for s in sessions]
        assert (
            all(len(u) == 1 for u in updates)
            and updates[0][0]["session"] == updates[1][0]["session"] == updates[2][0]["session"]
        )
        # each new session got the conversation so far; assistant turns as output_text, none ignored
        assert _replayed(sessions[0]) == []
        assert _replayed(sessions[1]) == [
            ("user", "input_text", "First question."),
            ("assistant", "output_text", "First answer."),
        ]
        assert _replayed(sessions[2]) == [
            ("user", "input_text", "First question."),
            ("assistant", "output_text", "First answer."),
            ("user", "input_text", "Second question."),
            ("assistant", "output_text", "Second answer."),
        ]
        assert all(s.ignored_items == [] and s.errors == [] for s in sessions)
        # not one byte of caller audio lost or reordered across the two switches
        assert b"".join(bytes(s.audio_in) for s in sessions) == _sent_audio(call)
        assert session.frames_dropped == 0
        # old sessions were closed by us, at once
        assert [s.closed_by for s in sessions] == ["client", "client", "client"]
        stored = await calls.get_call(env.db, call.call_sid)
        assert stored is not None and stored.provider_sessions == 3 and stored.end_reason == "caller_hangup"


async def _recovery(tmp_path: Path, how: str) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_utterance("First question.")
        fake.register_reply("first question", "First answer.")
        fake.register_utterance("Second question.")
        fake.register_reply("second question", "Second answer.")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await _exchange(env, call, session, 1)
        first = fake.session(0).id
        if how == "expire":
            fake.expire()  # `error` session_expired, then close 1001: the SDK's iterator simply ends
        else:
            fake.drop()  # no close frame at all (1006)
        await env.run(call, lambda: session.sessions_opened == 2)
        await _exchange(env, call, session, 2)
        await call.hangup()
        await eventually(session.ended.is_set)
        sessions = fake.sessions
        assert sessions[0].id == first and len(sessions) == 2
        assert sessions[0].closed_by == ("server:session_expired" if how == "expire" else "drop")
        assert _replayed(sessions[1]) == [
            ("user", "input_text", "First question."),
            ("assistant", "output_text", "First answer."),
        ]
        assert sessions[1].transcripts == ["Second question."] and sessions[1].ignored_items == []
        assert b"".join(bytes(s.audio_in) for s in sessions) == _sent_audio(call)
        stored = await calls.get_call(env.db, call.call_sid)
        assert stored is not None and stored.provider_sessions == 2 and stored.end_reason == "caller_hangup"


async def test_provider_session_expiry_is_recovered(tmp_path: Path) -> None:
    await _recovery(tmp_path, "expire")


async def test_provider_drop_is_recovered(tmp_path: Path) -> None:
    await _recovery(tmp_path, "drop")


async def test_failed_recovery_apologises_and_ends_the_call(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        fake.fail_next(503, path="/v1/realtime")  # the one reconnection attempt is refused
        fake.expire()
        await eventually(session.ended.is_set)
        await call.wait_closed()
        assert session.end_reason == "provider_failed"
        # Twilio was told to say the apology and hang up (the TwiML after <Connect> says it too)
        updates = env.twilio.instructions[call.call_sid]
        assert len(updates) == 1 and "<Say>Sorry, we have to end this call" in updates[0]["Twiml"]
        assert "<Hangup/>" in updates[0]["Twiml"]
        assert call.stream.closed_by in ("twilio", "service")
        assert len(fake.sessions) == 1 and fake.open_sessions == []
        stored = await calls.get_call(env.db, call.call_sid)
        assert stored is not None and stored.end_reason == "provider_failed"


async def test_a_stored_call_can_be_resumed_from_its_record(tmp_path: Path) -> None:
    """The handoff needs nothing in memory: a new stream naming the call in `resume_call` (#22 moves live calls
    between instances this way) replays the stored transcript into its first session, and does not greet again."""
    fake = FakeRealtime(reply_audio_ms=300)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS, greeting="Hello from Acme!")
        fake.register_reply("greet them now", "Hello from Acme!")
        fake.register_utterance("First question.")
        fake.register_reply("first question", "First answer.")
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.run(call, lambda: len(fake.session().responses) == 1 and not session.playback.playing(session.now_ms))
        await _exchange(env, call, session, 2)
        first_stream = call.stream.custom_parameters
        await call.hangup()
        await eventually(session.ended.is_set)

        resumed = TwilioMediaCall(
            f"ws://127.0.0.1:{env.port}/twilio/media-stream",
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            call_sid=call.call_sid,
            custom_parameters={**first_stream, "resume_call": call.call_sid},
            public_url=call.public_url,
            pace=None,
        )
        env.calls.append(resumed)
        await resumed.start()
        second = await env.wait_live(resumed)
        await env.tick(resumed, 200)
        record = fake.session()
        assert _replayed(record) == [
            ("assistant", "output_text", "Hello from Acme!"),
            ("user", "input_text", "First question."),
            ("assistant", "output_text", "First answer."),
        ]
        assert record.client_event_types.count("response.create") == 0  # no second greeting
        await resumed.hangup()
        await eventually(second.ended.is_set)
        items = await call_transcripts.items_of(env.db, call.call_sid)
        assert [i.seq for i in items] == sorted({i.seq for i in items})  # numbering went on, no clash


async def test_a_key_pressed_during_a_switch_reaches_the_new_session(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake, REALTIME_MAX_SESSION_S="1") as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_reply("pressed 7", "You pressed seven.")
        gate = env.gate()
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        gate.hold = True
        await env.run(call, lambda: session.phase == "switching")
        await call.send_dtmf("7")
        await env.tick(call, 100, settle=False)
        gate.release()
        await env.run(call, lambda: len(fake.sessions) == 2 and len(fake.sessions[1].responses) == 1)
        second = fake.sessions[1]
        texts = [e["item"]["content"][0]["text"] for e in second.client_events_of("conversation.item.create")]
        assert texts == ["The caller pressed 7 on the keypad."]
        assert second.responses[0]["output"][0]["content"][0]["transcript"] == "You pressed seven."
        assert fake.sessions[0].client_events_of("conversation.item.create") == []
