"""The realtime phone agent end to end: Twilio Media Streams (simulated, manual clock) → the relay (the real app
under hypercorn) → FakeRealtime (GA protocol), with FakeTwilio for REST. Assertions are on order and content."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from quart_app.db import call_transcripts, calls, knowledge
from tests.calls.harness import PhoneEnv, eventually, phone_env


def _sent_payloads(call) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in call.sent_events("media"))


async def _full_call(env: PhoneEnv) -> None:
    tenant = await env.tenant(
        instructions="You answer the phone for Acme Plumbing.",
        greeting="Thanks for calling Acme Plumbing!",
        knowledge_enabled=True,
    )
    await knowledge.add_document(
        env.db,
        tenant_id=tenant.id,
        title="Opening hours",
        content="Acme Plumbing is open Monday to Friday from 8 am to 6 pm.\n\nWe do not work on Sundays.",
        content_type="text/plain",
    )
    await knowledge.add_document(
        env.db, tenant_id=tenant.id, title="Prices", content="A call-out costs 90 dollars.", content_type="text/plain"
    )
    fake = env.realtime
    fake.register_reply("greet them now", "Thanks for calling Acme Plumbing!")
    fake.register_utterance("What are your opening hours?")
    fake.register_tool_call(
        "opening hours", "search_knowledge", {"query": "opening hours"}, reply="We are open 8 to 6."
    )

    call = await env.dial(tenant)
    session = await env.wait_live(call)
    # the greeting plays first
    await env.run(call, lambda: len(fake.session().responses) >= 1 and not session.playback.playing(session.now_ms))
    await env.say(call, 400)
    await env.run(call, lambda: len(fake.session().responses) >= 3 and not session.playback.playing(session.now_ms))
    await call.hangup()
    await eventually(session.ended.is_set)

    record = fake.session()
    assert record.beta_header is None
    assert record.model == "gpt-realtime"
    update = record.client_events_of("session.update")[0]["session"]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert update["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert update["instructions"].startswith("You answer the phone for Acme Plumbing.")
    assert [t["name"] for t in update["tools"]] == ["search_knowledge", "end_call"]
    # μ-law passed through untouched: the provider got exactly the caller's bytes
    assert bytes(record.audio_in) == _sent_payloads(call)
    # the tool call was answered from the tenant's documents, then a response was asked for
    outputs = [
        e["item"]
        for e in record.client_events_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    assert len(outputs) == 1
    result = json.loads(outputs[0]["output"])
    assert result["results"][0]["title"] == "Opening hours" and "8 am to 6 pm" in result["results"][0]["text"]
    types = record.client_event_types
    assert (
        types.index("response.create", types.index("conversation.item.create", types.index("session.update") + 2)) > 0
    )
    # what the caller heard: the greeting and the answer, all of it (no clear)
    assert not call.clears
    assert call.played_total == len(call.received_ulaw) > 0
    assert not call.protocol_errors
    # every chunk was followed by its own uniquely named mark
    names = [m.name for m in call.marks]
    assert len(names) == len(set(names)) == len(call.received_media)
    # the provider session ended with the call
    await eventually(lambda: fake.open_sessions == [])
    assert fake.session().closed_by == "client"

    db = env.db
    stored = await calls.get_call(db, call.call_sid)
    assert stored is not None
    assert stored.tenant_id == tenant.id and stored.stream_sid == call.stream_sid
    assert stored.from_number == "+15550001111" and stored.to_number == tenant.phone_numbers[0]
    assert stored.end_reason == "caller_hangup" and stored.relay_status == "ended"
    assert stored.started_at is not None and stored.ended_at is not None and stored.ended_at >= stored.started_at
    assert stored.responses == 3 and stored.input_tokens > 0 and stored.output_tokens > 0
    assert stored.provider_sessions == 1
    items = await call_transcripts.items_of(db, call.call_sid)
    assert [(i.role, i.text) for i in items] == [
        ("assistant", "Thanks for calling Acme Plumbing!"),
        ("user", "What are your opening hours?"),
        ("tool", "search_knowledge('opening hours'): 1 passages"),
        ("assistant", "We are open 8 to 6."),
    ]
    assert items[-1].latency_ms is not None and items[-1].latency_ms >= 0
    assert [i.call_ms for i in items] == sorted(i.call_ms for i in items)


async def test_full_call_with_a_knowledge_lookup(tmp_path: Path, backend_env: dict[str, str]) -> None:
    """On SQLite, then on PostgreSQL with Redis: the call, its record and its transcript."""
    async with phone_env(tmp_path, **backend_env) as env:
        await _full_call(env)
