"""Storage for the phone agent on both backends: the m0006 migration, tenants and their numbers, knowledge
search with ranking (FTS5 / tsvector), transcripts in call order, and the relay's columns on `calls`."""

from __future__ import annotations

import pytest
from databases import Database

from quart_app.calls.handoff import replay_history
from quart_app.calls.speech import HistoryItem
from quart_app.db import call_transcripts, calls, knowledge, tenants
from quart_app.db.call_transcripts import TranscriptItem
from quart_app.db.knowledge import split_passages
from quart_app.db.migrations import all_migrations


def test_migration_is_version_7_and_only_adds() -> None:
    migration = next(m for m in all_migrations() if m.version == 6)
    for dialect in ("sqlite", "postgresql"):
        for statement in migration.statements(dialect):
            assert statement.lstrip().upper().startswith(("CREATE", "ALTER TABLE CALLS ADD COLUMN")), statement


async def test_tenants_numbers_are_unique(db: Database) -> None:
    acme = await tenants.create_tenant(db, name="Acme", instructions="Be nice.", phone_numbers=["+15550000001"])
    assert (await tenants.tenant_for_number(db, "+15550000001")) == acme
    with pytest.raises(tenants.NumberTaken) as taken:
        await tenants.create_tenant(db, name="Other", instructions="x", phone_numbers=["+15550000002", "+15550000001"])
    assert taken.value.numbers == ["+15550000001"]
    assert await tenants.tenant_for_number(db, "+15550000002") is None  # the failed create left nothing behind
    updated = await tenants.update_tenant(
        db, acme.id, phone_numbers=["+15550000003"], max_call_s=600, turn_detection={"type": "semantic_vad"}
    )
    assert updated is not None and updated.phone_numbers == ["+15550000003"] and updated.max_call_s == 600
    assert updated.turn_detection == {"type": "semantic_vad"}
    assert await tenants.tenant_for_number(db, "+15550000001") is None
    await knowledge.add_document(db, tenant_id=acme.id, title="t", content="some words", content_type="text/plain")
    assert await tenants.delete_tenant(db, acme.id)
    assert await tenants.get_tenant(db, acme.id) is None
    assert await knowledge.search(db, acme.id, "words") == []


async def test_knowledge_search_ranks_and_isolates_tenants(db: Database) -> None:
    a = await tenants.create_tenant(db, name="A", instructions="x", phone_numbers=[])
    b = await tenants.create_tenant(db, name="B", instructions="x", phone_numbers=[])
    await knowledge.add_document(
        db,
        tenant_id=a.id,
        title="Opening hours",
        content="We open at 8 am and close at 6 pm on weekdays.",
        content_type="text/plain",
    )
    await knowledge.add_document(
        db,
        tenant_id=a.id,
        title="Parking",
        content="Parking is free after 6 pm. We are open to questions.",
        content_type="text/plain",
    )
    await knowledge.add_document(
        db, tenant_id=b.id, title="Opening hours", content="Tenant B opens at noon.", content_type="text/plain"
    )
    found = await knowledge.search(db, a.id, "What are your opening hours?")
    assert [p.title for p in found] == [
        "Opening hours",
        "Parking",
    ]  # the title match ranks first; stemming finds "open"
    assert found[0].score > found[1].score
    assert all("Tenant B" not in p.text for p in found)
    # user text is always literal: FTS operators and quotes cannot break the query
    for hostile in ('"', "open AND", "NEAR(open", "a:* | !b", "hours' OR 1=1 --", "()"):
        await knowledge.search(db, a.id, hostile)
    assert await knowledge.search(db, a.id, "   ") == []
    docs, total = await knowledge.list_documents(db, a.id, limit=10, offset=0)
    assert total == 2 and {d.title for d in docs} == {"Opening hours", "Parking"}
    assert await knowledge.delete_document(db, a.id, docs[0].id)
    assert not await knowledge.delete_document(db, b.id, docs[1].id)  # not B's document
    assert [p.title for p in await knowledge.search(db, a.id, "opening hours parking")] == [docs[1].title]


def test_long_documents_are_cut_into_passages() -> None:
    paragraph = "word " * 150  # 750 chars
    text = "\n\n".join([paragraph.strip()] * 3) + "\n\n" + ("A long sentence without end " * 100)
    passages = split_passages(text)
    assert all(len(p) <= knowledge.MAX_PASSAGE_CHARS for p in passages)
    assert len(passages) >= 5
    assert " ".join(passages).split() == text.split()  # nothing lost, nothing reordered


async def test_transcript_in_call_order_drives_a_replay(db: Database) -> None:
    sid = "CA" + "1" * 32
    await calls.open_call(db, call_sid=sid, tenant_id="tnt_x", from_number="+1555", to_number="+1666")
    await calls.relay_started(
        db,
        call_sid=sid,
        stream_sid="MZ1",
        tenant_id="tnt_x",
        from_number=None,
        to_number=None,
        account_sid=None,
        started_at=1000.0,
    )
    # the caller's transcript arrives after the agent started answering: call_ms keeps the spoken order
    for seq, (role, text, at_ms) in enumerate(
        [("assistant", "Hello!", 0), ("assistant", "Sure.", 2500), ("user", "Can you help?", 1200), ("dtmf", "5", 4000)]
    ):
        await call_transcripts.add_item(
            db, TranscriptItem(call_sid=sid, seq=seq, role=role, text=text, call_ms=at_ms, at=1000.0 + seq)
        )
    items = await call_transcripts.items_of(db, sid)
    assert [i.text for i in items] == ["Hello!", "Can you help?", "Sure.", "5"]
    assert await call_transcripts.next_seq(db, sid) == 4
    assert replay_history(items) == [
        HistoryItem("assistant", "Hello!"),
        HistoryItem("user", "Can you help?"),
        HistoryItem("assistant", "Sure."),
        HistoryItem("user", "The caller pressed 5 on the keypad."),
    ]
    await calls.add_usage(db, sid, calls.TokenUsage(input_tokens=100, cached_tokens=64, output_tokens=20))
    await calls.add_usage(db, sid, calls.TokenUsage(input_tokens=50, output_tokens=5, audio_output_tokens=5))
    await calls.provider_session_opened(db, sid)
    await calls.relay_ended(db, sid, end_reason="caller_hangup", ended_at=1042.4)
    # a late status callback from Twilio does not erase what the relay wrote
    await calls.record_status(db, call_sid=sid, status="completed", sequence=2)
    stored = await calls.get_call(db, sid)
    assert stored is not None
    assert (stored.responses, stored.input_tokens, stored.cached_tokens, stored.output_tokens) == (2, 150, 64, 25)
    assert stored.audio_output_tokens == 5 and stored.provider_sessions == 1
    assert stored.duration_s == 42 and stored.end_reason == "caller_hangup" and stored.status == "completed"
    assert stored.tenant_id == "tnt_x" and stored.stream_sid == "MZ1" and stored.from_number == "+1555"
