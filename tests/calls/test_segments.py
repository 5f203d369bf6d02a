"""Call segments and instance heartbeats (m0009, #22) on both backends, and one call's segments in-process: a
stream is a segment; a resumed call adds one and keeps its one record; the lease on a lost call has one winner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from databases import Database

from fakes import FakeRealtime, TwilioMediaCall
from quart_app.calls.cluster import CallCluster, default_stream_url, resume_parameters
from quart_app.calls.control import NoCallControl
from quart_app.db import call_segments, calls
from quart_app.db.migrations import all_migrations
from quart_app.settings import Settings
from quart_app.telephony import twiml
from tests.calls.harness import ACCOUNT_SID, AUTH_TOKEN, eventually, phone_env


def test_migration_only_adds() -> None:
    migration = next(m for m in all_migrations() if m.module.NAME == "call_segments")
    for dialect in ("sqlite", "postgresql"):
        for statement in migration.statements(dialect):
            assert statement.lstrip().upper().startswith("CREATE"), statement


async def test_segments_number_end_once_and_are_found_lost(db: Database) -> None:
    start = time.time()
    assert (
        await call_segments.segment_started(
            db, call_sid="CA1", instance_id="a", stream_sid="MZ1", stream_url="wss://x/s", started_at=start
        )
        == 0
    )
    # idempotent per stream; the next stream of the call is the next segment
    assert (
        await call_segments.segment_started(
            db, call_sid="CA1", instance_id="a", stream_sid="MZ1", stream_url=None, started_at=start
        )
        == 0
    )
    assert (
        await call_segments.segment_started(
            db, call_sid="CA1", instance_id="b", stream_sid="MZ2", stream_url=None, started_at=start + 1
        )
        == 1
    )
    assert await call_segments.segment_ended(db, stream_sid="MZ1", end_reason="moved", ended_at=start + 1)
    assert not await call_segments.segment_ended(db, stream_sid="MZ1", end_reason="twilio_stop", ended_at=start + 2)
    segments = await call_segments.segments_of(db, "CA1")
    assert [(s.seq, s.instance_id, s.end_reason) for s in segments] == [(0, "a", "moved"), (1, "b", None)]

    # b's heartbeat is live: nothing lost; once it expires, its open segment is
    await call_segments.heartbeat(db, "b", call_segments.READY, 1.5)
    await call_segments.heartbeat(db, "c", call_segments.DRAINING, 1.5)
    assert await call_segments.lost_segments(db) == []
    assert await call_segments.ready_peers(db, "c") == ["b"]
    assert await call_segments.ready_peers(db, "b") == []  # c is draining
    lost = await call_segments.lost_segments(db, at=time.time() + 2)
    assert [(s.call_sid, s.seq) for s in lost] == [("CA1", 1)]
    assert await call_segments.instance_alive(db, "b") and not await call_segments.instance_alive(db, "zz")

    # the lease: many claimants at once, one winner
    results = await asyncio.gather(*(call_segments.claim_lost(db, lost[0], by=f"i{n}") for n in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    segment = (await call_segments.segments_of(db, "CA1"))[1]
    assert segment.end_reason == "lost" and segment.recovered_by == f"i{results.index(True)}"
    await call_segments.instance_gone(db, "b")
    assert not await call_segments.instance_alive(db, "b")


def test_resume_twiml_names_the_call_and_pauses_before_the_apology() -> None:
    settings = Settings.from_env(
        {"PUBLIC_BASE_URL": "https://voice.example.com", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    )
    assert default_stream_url(settings) == "wss://voice.example.com/twilio/media-stream"
    cluster = CallCluster(settings, None, NoCallControl(), stream_twiml=twiml.connect_stream)  # type: ignore[arg-type]
    document = cluster.resume_twiml("CA9", tenant_id="t1", from_number="+1", to_number="+2", stream_url=None)
    assert document is not None
    assert '<Parameter name="resume_call" value="CA9"/>' in document
    assert '<Stream url="wss://voice.example.com/twilio/media-stream">' in document
    assert '</Connect><Pause length="4"/><Say>' in document
    assert resume_parameters("CA9", "t1", None, "+2")["caller"] is None


async def test_a_call_is_one_segment_and_a_resumed_stream_adds_one(tmp_path: Path) -> None:
    fake = FakeRealtime(reply_audio_ms=200)
    async with phone_env(tmp_path, realtime=fake, INSTANCE_ID="inst-1") as env:
        tenant = await env.tenant()
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        await env.say(call, 300, then_silence_ms=400)
        await call.hangup()
        await eventually(session.ended.is_set)
        segments = await call_segments.segments_of(env.db, call.call_sid)
        assert [(s.seq, s.instance_id, s.stream_sid, s.end_reason) for s in segments] == [
            (0, "inst-1", call.stream_sid, "twilio_stop")
        ]
        assert segments[0].stream_url == "wss://voice.example.com/twilio/media-stream"

        resumed = TwilioMediaCall(
            f"ws://127.0.0.1:{env.port}/twilio/media-stream",
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            call_sid=call.call_sid,
            custom_parameters={**call.stream.custom_parameters, "resume_call": call.call_sid},
            public_url=call.public_url,
            pace=None,
        )
        env.calls.append(resumed)
        await resumed.start()
        second = await env.wait_live(resumed)
        for _ in range(1000):  # the record is written behind the relay
            row = await calls.get_call(env.db, call.call_sid)
            if row is not None and row.stream_sid == resumed.stream_sid:
                break
            await env.tick(resumed, 20)
        # the old stream's late end must not mark the call ended: it is live on the new stream
        await calls.relay_ended(env.db, call.call_sid, end_reason="moved", ended_at=time.time(), stream_sid="MZold")
        row = await calls.get_call(env.db, call.call_sid)
        assert row is not None and row.relay_status == "live" and row.stream_sid == resumed.stream_sid
        await resumed.hangup()
        await eventually(second.ended.is_set)
        segments = await call_segments.segments_of(env.db, call.call_sid)
        assert [(s.seq, s.end_reason) for s in segments] == [(0, "twilio_stop"), (1, "twilio_stop")]
        assert len(await calls.recent_calls(env.db)) == 1
