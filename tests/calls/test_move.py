"""A deploy never cuts a live call (#22): SIGTERM on the instance holding 5 calls mid-conversation moves each to
the other instance through Twilio REST (`<Connect><Stream>` with `resume_call`), where it resumes from the stored
record: the new Realtime session is given the conversation so far, no greeting is repeated, the transcript goes
on without a gap, and the call keeps one record with two segments.

The audio gap per call is measured and printed (never asserted tightly): from the last caller frame the old
instance relayed to its Realtime session to the first one the new instance relayed (the agent could not hear
the caller in between; the caller's audio is buffered, not lost), and the stream-level gap (Twilio's old stream
stopped → the new one started).
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from fakes import FakeRealtime
from quart_app.calls.handoff import replay_history
from tests.calls.cluster_harness import call_cluster, cluster_available, eventually, summary, until
from tests.calls.harness import voice

pytestmark = pytest.mark.skipif(cluster_available() is None, reason="needs TEST_DATABASE_URL and TEST_REDIS_URL")

CALLS = 5
GREETING = "Hello from Acme!"


async def test_sigterm_moves_five_calls_mid_conversation(live_server_factory) -> None:
    fake = FakeRealtime(reply_audio_ms=400)
    fake.register_reply("greet them now", GREETING)
    async with call_cluster(live_server_factory, ["a", "b"], realtime=fake, DRAIN_TIMEOUT_S="20") as cluster:
        a, b = cluster.servers["a"], cluster.servers["b"]
        tenants = [await cluster.tenant(f"Acme {i}", greeting=GREETING) for i in range(CALLS)]
        calls = [await cluster.dial(t) for t in tenants]
        assert cluster.balancer.routed_to(a.port, "/twilio/media-stream") == CALLS  # all on A

        # mid-conversation: the greeting, one question and its answer, stored
        await eventually(lambda: all(len(cluster.sessions_of(t)) == 1 for t in tenants), what="sessions on A")
        for call in calls:
            await call.play_ulaw(voice(600), wait=False)

        async def stored(n: int) -> bool:
            counts = [len(await cluster.transcript(c.call_sid)) for c in calls]
            return all(count >= n for count in counts)

        await until(lambda: stored(3), what="stored(3)")
        before = {c.call_sid: await cluster.transcript(c.call_sid) for c in calls}
        for items in before.values():
            assert [i.role for i in items][:3] == ["assistant", "user", "assistant"], items

        # SIGTERM A: every call moves to B
        a.signal(signal.SIGTERM)
        await eventually(lambda: all(len(c.streams) == 2 and c.connected for c in calls), what="all calls moved")
        await eventually(lambda: all(len(cluster.sessions_of(t)) == 2 for t in tenants), what="sessions on B")
        assert await asyncio.to_thread(a.wait_exit, 30) == 0, a.output()
        assert cluster.balancer.routed_to(b.port, "/twilio/media-stream") == CALLS

        # each resumed with its context, without a second greeting
        for tenant, call in zip(tenants, calls, strict=True):
            old, new = cluster.sessions_of(tenant)
            expected = [(h.role, h.text) for h in replay_history(before[call.call_sid])]
            assert new.given_history == expected
            assert new.client_event_types.count("response.create") == 0  # no greeting, no response asked
            assert old.closed_by is not None  # the old paid session was closed
            assert call.streams[1].custom_parameters["resume_call"] == call.call_sid
            assert call.streams[0].closed_by == "twilio"  # Twilio stopped the old stream (the redirect)
            assert len(cluster.updates(call.call_sid)) == 1

        # the conversation goes on at B
        for call in calls:
            await call.play_ulaw(voice(500), wait=False)
        await until(lambda: stored(5), what="stored(5)")
        for call in calls:
            await call.hangup()

        gaps, stream_gaps = [], []
        for tenant, call in zip(tenants, calls, strict=True):
            old, new = cluster.sessions_of(tenant)
            assert old.last_audio_at is not None and new.first_audio_at is not None
            gaps.append(new.first_audio_at - old.last_audio_at)
            first, second = call.streams
            assert first.closed_at is not None
            stream_gaps.append(second.opened_at - first.closed_at)

        async def settled() -> bool:
            found = [await cluster.segments(c.call_sid) for c in calls]
            return all(len(s) == 2 and s[-1].ended_at is not None for s in found)

        await until(settled, what="two segments per call, both ended")
        for call in calls:
            items = await cluster.transcript(call.call_sid)
            assert [i.seq for i in items] == list(range(len(items)))  # continuous: no row lost, no clash
            assert items[: len(before[call.call_sid])] == before[call.call_sid]
            segments = await cluster.segments(call.call_sid)
            assert [(s.seq, s.instance_id, s.end_reason) for s in segments] == [
                (0, cluster.ids["a"], "moved"),
                (1, cluster.ids["b"], "twilio_stop"),
            ]
            assert segments[0].stream_sid == call.streams[0].stream_sid
            assert segments[1].stream_sid == call.streams[1].stream_sid
            row = await cluster.call_row(call.call_sid)
            assert row is not None and row.provider_sessions == 2 and row.relay_status == "ended"
            assert row.end_reason == "caller_hangup" and row.stream_sid == call.streams[1].stream_sid
            tenant = next(t for t in tenants if t.phone_numbers[0] == row.to_number)
            responses = sum(len(s.responses) for s in cluster.sessions_of(tenant))
            assert row.responses == responses  # usage counted once per response, per Realtime session

        per_call = [(round(g, 3), round(s, 3)) for g, s in zip(gaps, stream_gaps, strict=True)]
        print(f"\nmoved {CALLS} calls: agent audio gap {summary(gaps)}; stream gap {summary(stream_gaps)}")
        print("per call (agent gap, stream gap):", per_call)
        assert max(gaps) < 10  # generous: a hang guard, not a speed requirement
        log = a.output()
        assert "moving to another instance" in log and "Traceback" not in log, log


async def test_no_other_instance_calls_end_with_the_apology_at_the_drain_limit(live_server_factory) -> None:
    async with call_cluster(live_server_factory, ["a"], DRAIN_TIMEOUT_S="4") as cluster:
        a = cluster.servers["a"]
        tenants = [await cluster.tenant(f"Solo {i}") for i in range(2)]
        calls = [await cluster.dial(t) for t in tenants]
        await eventually(lambda: all(len(cluster.sessions_of(t)) == 1 for t in tenants), what="sessions")
        a.signal(signal.SIGTERM)
        assert await asyncio.to_thread(a.wait_exit, 30) == 0, a.output()
        for tenant, call in zip(tenants, calls, strict=True):
            updates = cluster.updates(call.call_sid)
            assert len(updates) == 1 and "<Stream" not in updates[0]["Twiml"], updates  # no move
            assert "technical problem" in updates[0]["Twiml"] and "<Hangup/>" in updates[0]["Twiml"]
            assert len(call.streams) == 1 and call.streams[0].closed_by is not None
            assert all(s.closed_by is not None for s in cluster.sessions_of(tenant))  # no orphaned session
            segments = await cluster.segments(call.call_sid)
            assert [(s.instance_id, s.end_reason) for s in segments] == [(cluster.ids["a"], "drain_limit")]
        log = a.output()
        assert "no other instance takes calls" in log and "drain limit: 2 calls end with an apology" in log, log
