"""A crash never cuts a live call (#22): SIGKILL of the instance relaying calls. Twilio's streams close without
`stop`; the caller hears the pause after `<Connect>` (the simulator lingers as Twilio would, then hangs up). The
other instances find the calls' open segments whose instance's heartbeat expired; exactly one takes the lease
per call, checks Twilio still has the call in progress, and replaces its TwiML with the resume stream: one REST
update per call, whichever instance sent it. The time from the kill to the caller being relayed again is printed.
"""

from __future__ import annotations

import time

import pytest

from fakes import FakeRealtime
from quart_app.calls.handoff import replay_history
from tests.calls.cluster_harness import (
    call_cluster,
    cluster_available,
    eventually,
    kill_instance,
    summary,
    until,
)
from tests.calls.harness import voice

pytestmark = pytest.mark.skipif(cluster_available() is None, reason="needs TEST_DATABASE_URL and TEST_REDIS_URL")

CALLS = 3
LINGER_S = 10.0  # the pause (CALLS_RECOVERY_HOLD_S, 4 s) and the apology after <Connect>, then Twilio hangs up


async def test_sigkill_calls_are_recovered_once_by_another_instance(live_server_factory) -> None:
    fake = FakeRealtime(reply_audio_ms=300)
    async with call_cluster(live_server_factory, ["a", "b", "c"], realtime=fake) as cluster:
        a = cluster.servers["a"]
        tenants = [await cluster.tenant(f"Crash {i}") for i in range(CALLS)]
        calls = [await cluster.dial(t, linger_s=LINGER_S) for t in tenants]
        assert cluster.balancer.routed_to(a.port, "/twilio/media-stream") == CALLS
        for call in calls:
            await call.play_ulaw(voice(500), wait=False)

        async def stored(n: int) -> bool:
            counts = [len(await cluster.transcript(c.call_sid)) for c in calls]
            return all(count >= n for count in counts)

        await until(lambda: stored(2), what="stored(2)")
        before = {c.call_sid: await cluster.transcript(c.call_sid) for c in calls}

        killed = time.monotonic()
        kill_instance(a)
        await eventually(lambda: all(c.streams[0].closed_by == "service" for c in calls), what="streams lost")
        await eventually(lambda: all(len(c.streams) == 2 and c.connected for c in calls), what="calls recovered")
        await eventually(lambda: all(len(cluster.sessions_of(t)) == 2 for t in tenants), what="resumed sessions")
        await eventually(
            lambda: all(cluster.sessions_of(t)[1].first_audio_at is not None for t in tenants), what="relaying"
        )
        back = [cluster.sessions_of(t)[1].first_audio_at for t in tenants]
        wall_now, mono_now = time.time(), time.monotonic()
        recovered_in = [mono_now - (wall_now - at) - killed for at in back if at is not None]
        assert not any(c.ended for c in calls)

        for tenant, call in zip(tenants, calls, strict=True):
            assert len(cluster.updates(call.call_sid)) == 1, cluster.updates(call.call_sid)  # one instance acted
            assert call.streams[1].custom_parameters["resume_call"] == call.call_sid
            new = cluster.sessions_of(tenant)[1]
            assert new.given_history == [(h.role, h.text) for h in replay_history(before[call.call_sid])]
            segments = await cluster.segments(call.call_sid)
            assert [(s.seq, s.instance_id, s.end_reason) for s in segments[:1]] == [(0, cluster.ids["a"], "lost")]
            assert segments[0].recovered_by in (cluster.ids["b"], cluster.ids["c"])
            assert segments[1].instance_id in (cluster.ids["b"], cluster.ids["c"]) and segments[1].ended_at is None

        for call in calls:
            await call.hangup()
        print(f"\nrecovered {CALLS} calls after SIGKILL: kill → relayed again {summary(recovered_in)}")
        assert max(recovered_in) < LINGER_S  # back before Twilio would have hung up (generous bound)
