"""Barge-in: the caller talks over the agent. `clear` goes to Twilio, the item is truncated at exactly what the
caller heard (marks, interpolated on the call clock), and late audio of the interrupted item is dropped."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeRealtime
from quart_app.db import call_transcripts
from tests.calls.harness import eventually, phone_env, voice

TURNS = {"type": "server_vad", "silence_duration_ms": 200}


def _deltas(record, response_index: int) -> int:  # type: ignore[no-untyped-def]
    response_id = record.responses[response_index]["id"]
    return sum(1 for e in record.server_events_of("response.output_audio.delta") if e["response_id"] == response_id)


async def test_barge_in_truncates_at_what_was_heard(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=1000, audio_delta_ms=100)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection=TURNS)
        fake.register_utterance("Tell me a long story.")
        fake.register_utterance("Stop, I have a question.")
        fake.stall_responses(after_deltas=5)  # the answer stops after 500 ms of audio until released
        call = await env.dial(tenant)
        session = await env.wait_live(call)

        await env.say(call, 300)
        await env.run(call, lambda: session.frames_out == 5)
        await env.tick(call, 180)  # the caller hears some of it (not on a mark boundary)
        heard_before = call.played_total
        assert 0 < heard_before < len(call.received_ulaw)

        await call.play_ulaw(voice(300), wait=False)
        await env.run(call, lambda: bool(call.clears))
        record = fake.session()
        assert "input_audio_buffer.speech_started" in record.server_event_types
        # clear first, then truncate at the exact number of milliseconds the caller heard
        heard_ms = (len(call.received_ulaw) - call.clears[0].dropped_bytes) // 8
        assert heard_ms * 8 == call.played_total
        assert heard_ms % 100 != 0  # between two marks: interpolated on the call clock, not rounded to a mark
        await env.settle(call)
        record = fake.session()
        assert [t["audio_end_ms"] for t in record.truncations] == [heard_ms]
        assert record.truncations[0]["audio_ms_before"] == 500  # never past what was generated
        assert record.errors == []
        assert call.clears[0].dropped_bytes > 0 and call.clears[0].marks  # pending marks were echoed at once
        # the agent's answer to the interruption plays normally
        fake.release_responses()
        await env.run(call, lambda: len(record.responses) >= 0 and len(fake.session().responses) >= 2)
        await env.run(call, lambda: session.frames_out == 15 and not session.playback.playing(session.now_ms))
        assert call.played_total == len(call.received_ulaw) - call.clears[0].dropped_bytes
        await call.hangup()
        await eventually(session.ended.is_set)
        items = await call_transcripts.items_of(env.db, call.call_sid)
        assistant = [i for i in items if i.role == "assistant"]
        assert assistant[0].interrupted and not assistant[1].interrupted


async def test_late_audio_of_an_interrupted_item_is_dropped(tmp_path: Path) -> None:
    """With interrupt_response off the provider keeps generating; the relay still stops the caller hearing it."""
    fake = FakeRealtime(reply_audio_ms=1000, audio_delta_ms=100)
    async with phone_env(tmp_path, realtime=fake) as env:
        tenant = await env.tenant(turn_detection={**TURNS, "interrupt_response": False})
        fake.stall_responses(after_deltas=4)
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.say(call, 300)
        await env.run(call, lambda: session.frames_out == 4)
        await env.tick(call, 100)
        await call.play_ulaw(voice(600), wait=False)
        await env.run(call, lambda: bool(call.clears))
        media_at_clear = len(call.received_media)
        fake.release_responses()  # the interrupted response goes on: its 6 remaining deltas arrive late
        await env.run(call, lambda: len(fake.session().responses) >= 1)
        record = fake.session()
        assert record.responses[0]["status"] == "completed" and _deltas(record, 0) == 10
        assert len(call.received_media) == media_at_clear  # none of them reached the caller
        # the caller's own turn is answered afterwards, and that audio does play
        await env.run(call, lambda: len(fake.session().responses) >= 2)
        await env.run(call, lambda: not session.playback.playing(session.now_ms) and session.frames_out == 14)
        assert len(call.received_media) == media_at_clear + 10
