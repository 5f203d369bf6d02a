"""Live instances relaying phone calls behind the loopback balancer (#22): real hypercorn processes sharing one
PostgreSQL database and Redis, the fake Realtime and fake Twilio in this process, and Twilio's Media Streams
played by `TwilioMediaCall` in real time (pace 1.0), following the fake Twilio's REST updates as the carrier does.
Built on the pieces of tests/calls/harness.py (the fakes' settings, an inbound call and its Media Stream).

    async with call_cluster(live_server_factory, ["a", "b"]) as cluster:
        tenant = await cluster.tenant("Acme 1")
        call = await cluster.dial(tenant)        # POST /twilio/voice through the balancer, then the stream
        cluster.realtime_sessions(call)          # the fake Realtime sessions of that call, in order
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from databases import Database

from fakes import FakeRealtime, FakeTwilio, RealtimeSessionRecord, TwilioMediaCall, run_fake
from quart_app.db import call_segments, call_transcripts, calls, tenants
from quart_app.db.database import connect, open_database
from quart_app.db.tenants import Tenant
from quart_app.settings import Settings
from tests.calls import harness
from tests.calls.harness import inbound_call, provider_env, signed, stream_call
from tests.support.balancer import Balancer
from tests.support.databases import create_database, drop_database, require_env
from tests.support.live_server import LiveServer

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "cluster-test-auth-token-0123456789"
CALLER = "+15550002222"
GUARD_S = 60.0  # hang guard only


async def eventually(predicate: Callable[[], Any], guard_s: float = GUARD_S, what: str = "condition") -> None:
    """harness.eventually with this harness's hang guard, polled every 20 ms (state owned by other processes)."""
    await harness.eventually(predicate, guard_s, what, every_s=0.02)


async def until(check: Callable[[], Awaitable[bool]], guard_s: float = GUARD_S, what: str = "condition") -> None:
    """Poll the async `check()` (e.g. a database query) until it holds; `guard_s` is only a hang guard."""
    try:
        async with asyncio.timeout(guard_s):
            while not await check():  # noqa: ASYNC110 - state in the database, written by other processes
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what} not reached (hang guard {guard_s} s)") from None


def kill_instance(server: LiveServer) -> None:
    """SIGKILL the instance as a crash or the OOM killer would: hypercorn's worker (which serves the requests)
    and its parent, with no drain and no socket closed cleanly."""
    assert server.proc is not None
    pid = server.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = [int(c) for c in children.read_text().split()] if children.exists() else []
    for child in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    server.signal(signal.SIGKILL)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, worst {max(values):.3f} s ({len(values)} calls)"


@dataclass
class CallCluster:
    servers: dict[str, LiveServer]
    balancer: Balancer
    realtime: FakeRealtime
    twilio: FakeTwilio
    db: Database
    ids: dict[str, str]
    calls: list[TwilioMediaCall] = field(default_factory=list)

    async def tenant(self, name: str, **values: Any) -> Tenant:
        values.setdefault("instructions", f"You answer the phone for {name}.")
        values.setdefault("turn_detection", {"type": "server_vad", "silence_duration_ms": 200})
        number = "+1555" + str(secrets.randbelow(10**7)).zfill(7)
        return await tenants.create_tenant(self.db, name=name, phone_numbers=[number], **values)

    async def dial(self, tenant: Tenant, *, linger_s: float | None = None) -> TwilioMediaCall:
        """An inbound call to the tenant, placed as Twilio does: the router through the balancer, then the stream
        its TwiML names (also through the balancer), following the fake Twilio's REST updates."""
        params = inbound_call(self.twilio, tenant.phone_numbers[0], caller=CALLER, account_sid=ACCOUNT_SID)
        headers = signed("/twilio/voice", params, AUTH_TOKEN)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"http://127.0.0.1:{self.balancer.port}/twilio/voice", data=params, headers=headers
            )
        assert response.status_code == 200, response.text
        call = stream_call(
            response.text,
            params["CallSid"],
            lambda _: f"ws://127.0.0.1:{self.balancer.port}/twilio/media-stream",
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            pace=1.0,
            linger_s=linger_s,
        )
        self.calls.append(call)
        await call.start()
        call.follow(self.twilio)
        return call

    def sessions_of(self, tenant: Tenant) -> list[RealtimeSessionRecord]:
        """The fake Realtime sessions opened for the tenant's calls (one tenant per call in these tests)."""
        return [s for s in self.realtime.sessions if tenant.instructions in str(s.config.get("instructions", ""))]

    async def transcript(self, call_sid: str) -> list[call_transcripts.TranscriptItem]:
        return await call_transcripts.items_of(self.db, call_sid)

    async def segments(self, call_sid: str) -> list[call_segments.Segment]:
        return await call_segments.segments_of(self.db, call_sid)

    async def call_row(self, call_sid: str) -> calls.Call | None:
        return await calls.get_call(self.db, call_sid)

    def updates(self, call_sid: str) -> list[dict[str, str]]:
        """Every REST update of the call that carried TwiML, in order."""
        return [u for u in self.twilio.instructions.get(call_sid, []) if "Twiml" in u]


def cluster_available() -> tuple[str, str] | None:
    base, redis = require_env("TEST_DATABASE_URL"), require_env("TEST_REDIS_URL")
    return (base, redis) if base and redis else None


@contextlib.asynccontextmanager
async def call_cluster(
    live_server_factory: Callable[..., LiveServer],
    names: list[str],
    *,
    realtime: FakeRealtime | None = None,
    **env: str,
) -> AsyncIterator[CallCluster]:
    """Instances `names` (balancer order: the first healthy one gets new connections), all ready."""
    available = cluster_available()
    assert available is not None, "needs TEST_DATABASE_URL and TEST_REDIS_URL"
    base, redis = available
    url = await create_database(base)
    run = secrets.token_hex(3)
    try:
        async with (
            run_fake(realtime or FakeRealtime(reply_audio_ms=400)) as fake_realtime,
            run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as fake_twilio,
        ):
            ids = {name: f"calls-{name}-{run}" for name in names}

            def start(name: str) -> LiveServer:
                return live_server_factory(
                    DATABASE_URL=url,
                    REDIS_URL=redis,
                    INSTANCE_ID=ids[name],
                    **provider_env(fake_realtime, fake_twilio, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN),
                    **env,
                )

            servers: dict[str, LiveServer] = {}
            for name in names:  # one at a time: the first runs the migrations
                servers[name] = await asyncio.to_thread(start, name)
            database = open_database(Settings.from_env({"DATABASE_URL": url}).database_url)
            await connect(database)
            try:
                async with Balancer([servers[n].port for n in names]) as balancer:
                    cluster = CallCluster(servers, balancer, fake_realtime, fake_twilio, database, ids)
                    try:
                        yield cluster
                    finally:
                        for call in cluster.calls:
                            with contextlib.suppress(Exception):
                                await call.hangup()
                        for server in servers.values():
                            await asyncio.to_thread(server.stop)
            finally:
                await database.disconnect()
    finally:
        await drop_database(base, url)
