"""Monitoring across instances sharing Redis: a dashboard on instance A sees the calls and streams of
instance B; B drops out when it stops, and an instance that dies without a word drops out when its report
expires (two of its periods).

A is a hypercorn process; B is the app under an in-process hypercorn, so the test can hold a simulated call in
B's real calls feature (a `CallSession` opened through `RealtimeCalls.open_call`, never begun). B's live
stream is real: a Socket.IO client streaming silence to B's `/audio-stream` through the fake Deepgram.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from fakes import FakeDeepgram, run_fake
from quart_app import create_app
from quart_app.calls.session import CallInfo
from quart_app.db import api_keys, users
from quart_app.db.database import connect, open_database
from quart_app.monitoring.cluster import ClusterReports
from quart_app.monitoring.feature import MonitoringFeature
from quart_app.settings import Settings
from tests.live.support import connect_socketio
from tests.monitoring.clients import Dashboard, SilentTwilio, demo_tenant, realtime_calls
from tests.support.databases import create_database, drop_database, require_env
from tests.support.inprocess import served
from tests.support.live_audio import silence
from tests.support.users import make_user, unique_email

pytestmark = pytest.mark.redis


@pytest.fixture
async def database_env(tmp_path: Path) -> AsyncIterator[dict[str, dict[str, str]]]:
    """DATABASE_URL per instance: one fresh PostgreSQL database for both, else a SQLite file each."""
    base = require_env("TEST_DATABASE_URL")
    if not base:
        yield {name: {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/{name}.db"} for name in ("a", "b")}
        return
    url = await create_database(base)
    try:
        yield {"a": {"DATABASE_URL": url}, "b": {"DATABASE_URL": url}}
    finally:
        await drop_database(base, url)


async def admin_key(database_url: str) -> str:
    """An admin and its API key, written straight into a running instance's (migrated) database."""
    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        user = await users.create_user(db, email=unique_email("ops"), role="admin")
        _, key = await api_keys.create_api_key(db, user.id, "dashboard")
    finally:
        await db.disconnect()
    return key


def rows_from(update: dict[str, Any], table: str, instance: str) -> list[dict[str, Any]]:
    return [row for row in update.get(table, []) if row.get("instance") == instance]


def instances_of(update: dict[str, Any]) -> set[str]:
    return {i["instance"] for i in update["instances"]}


async def test_a_dashboard_on_a_sees_b_then_b_drops_out(
    database_env: dict[str, dict[str, str]], live_server_factory: Any, redis_url: str
) -> None:
    run = secrets.token_hex(4)  # other runs may share the Redis database: match on our own instance ids
    a_id, b_id = f"mon-a-{run}", f"mon-b-{run}"
    server_a = await asyncio.to_thread(
        live_server_factory, REDIS_URL=redis_url, INSTANCE_ID=a_id, MONITORING_REPORT_S="1", **database_env["a"]
    )
    key = await admin_key(database_env["a"]["DATABASE_URL"])
    dashboard = await Dashboard().connect(server_a.url, key)
    sid = "CA" + secrets.token_hex(16)
    try:
        assert (await dashboard.call("start_monitoring", {"interval_s": 1}))["ok"]
        first = await dashboard.next_update()
        assert first["scope"] == "cluster" and a_id in instances_of(first)

        async with run_fake(FakeDeepgram()) as deepgram:
            env_b = {
                "APP_ENV": "test",
                "REDIS_URL": redis_url,
                "INSTANCE_ID": b_id,
                "MONITORING_REPORT_S": "1",
                "DEEPGRAM_API_KEY": deepgram.api_key,
                "DEEPGRAM_BASE_URL": deepgram.base_url,
                "OPENAI_API_KEY": "sk-test-never-dialled",
                **database_env["b"],
            }
            app_b = create_app(Settings.from_env(env_b))
            async with served(app_b) as port_b:
                # A real live stream on B...
                _, user_key = await make_user(app_b)
                stream = await connect_socketio(port_b, user_key)
                try:
                    kind, answer = await stream.start_and_wait(encoding="linear16", sample_rate=16000)
                    assert kind == "started", answer
                    await stream.send_audio(silence(0.2))
                    # ...and a simulated call held by B's calls feature.
                    calls = realtime_calls(app_b)
                    info = CallInfo(sid, "MZ" + secrets.token_hex(16), None, "ten_demo", "+15551234567", "+15557654321")
                    session = calls.open_call(info, demo_tenant(), SilentTwilio())
                    session.phase, session.now_ms, session.last_latency_ms = "live", 42_000, 512

                    def sees_b(update: dict[str, Any]) -> bool:
                        return bool(rows_from(update, "active_calls", b_id)) and bool(
                            rows_from(update, "live_streams", b_id)
                        )

                    seen = await dashboard.update_where(sees_b)
                    assert {a_id, b_id} <= instances_of(seen)
                    call = rows_from(seen, "active_calls", b_id)[0]
                    assert call["call_sid"] == sid and call["caller"] == "+1••••••4567"
                    assert call["last_latency_ms"] == 512 and call["duration_s"] == 42.0
                    assert rows_from(seen, "live_streams", b_id)[0]["transport"] == "socket.io"
                    assert seen["connections"].get("/audio-stream", 0) >= 1  # B's client, counted on A
                    assert seen["connections"].get("/monitoring", 0) >= 1  # the dashboard itself, on A
                    assert seen["totals"]["active_calls"] >= 1
                    b_view = next(i for i in seen["instances"] if i["instance"] == b_id)
                    assert b_view["version"] and b_view["uptime_s"] >= 0 and not b_view["this"]

                    # B reports at the dashboard's pace: its report lives two 1 s periods.
                    probe = aioredis.Redis.from_url(redis_url)
                    try:
                        ttl = await probe.pttl(ClusterReports(probe, b_id).report_key(b_id))
                    finally:
                        await probe.aclose()
                    assert 0 < ttl <= 2000, ttl
                    calls.calls.pop(sid)
                finally:
                    await stream.close()

        # B has stopped: it withdrew its report, so the next updates no longer count it.
        gone = await dashboard.update_where(lambda u: b_id not in instances_of(u))
        assert not rows_from(gone, "active_calls", b_id) and not rows_from(gone, "live_streams", b_id)
        assert a_id in instances_of(gone)

        # An instance that dies without withdrawing drops out when its report expires.
        ghost_id = f"mon-ghost-{run}"
        redis = aioredis.Redis.from_url(redis_url)
        try:
            report = {"instance": ghost_id, "version": "0", "uptime_s": 1, "reported_at": first["timestamp"]}
            await ClusterReports(redis, ghost_id).publish(report, period_s=1.0)
        finally:
            await redis.aclose()  # and never publishes again
        await dashboard.update_where(lambda u: ghost_id in instances_of(u))
        await dashboard.update_where(lambda u: ghost_id not in instances_of(u))
    finally:
        await dashboard.close()


async def test_reports_expire_after_two_periods_and_the_smallest_interval_asked_wins(redis_url: str) -> None:
    run = secrets.token_hex(4)
    redis = aioredis.Redis.from_url(redis_url)
    prefix = f"voice-backend:monitoring-test-{run}"
    try:
        one, two = ClusterReports(redis, "one", prefix), ClusterReports(redis, "two", prefix)
        await one.publish({"instance": "one"}, period_s=5.0)
        await two.publish({"instance": "two"}, period_s=0.5)
        assert 5000 < await redis.pttl(one.report_key("one")) <= 10_000
        assert 0 < await redis.pttl(two.report_key("two")) <= 1000
        assert sorted(r["instance"] for r in await one.read()) == ["one", "two"]
        await one.withdraw()
        assert [r["instance"] for r in await two.read()] == ["two"]
        await redis.delete(two.report_key("two"))  # as if it had expired: dropped from the index on read
        assert await two.read() == []
        assert await redis.smembers(two.index_key) == set()

        assert await one.requested_interval() is None
        await one.request_interval(5.0)
        await two.request_interval(1.0)
        await one.request_interval(5.0)  # a larger interval does not override a smaller one still asked for
        assert await one.requested_interval() == 1.0
        assert 0 < await redis.pttl(one.demand_key) <= 3000  # lapses three intervals after its last refresh
    finally:
        await redis.delete(f"{prefix}:instances", f"{prefix}:demand", f"{prefix}:report:one", f"{prefix}:report:two")
        await redis.aclose()


async def test_an_instance_reports_faster_while_a_dashboard_asks_for_it(make_app: Any, redis_url: str) -> None:
    instance = f"mon-pace-{secrets.token_hex(4)}"
    async with make_app(REDIS_URL=redis_url, INSTANCE_ID=instance, MONITORING_REPORT_S="30") as (app, _):
        service = next(f for f in app.extensions["features"] if isinstance(f, MonitoringFeature)).service
        probe = aioredis.Redis.from_url(redis_url)
        key = ClusterReports(probe, instance).report_key(instance)
        try:
            for _ in range(200):  # the first report, at the idle pace: it lives 60 s
                if await probe.pttl(key) > 0:
                    break
                await asyncio.sleep(0.05)
            assert 2000 < await probe.pttl(key) <= 60_000
            sent = asyncio.Event()

            async def send(sid: str, payload: dict[str, Any]) -> None:
                sent.set()

            service.send = send
            service.subscribe("local-dashboard", 1)
            await asyncio.wait_for(sent.wait(), 20)
            for _ in range(200):  # reported again at once, now at the dashboard's 1 s pace
                if 0 < await probe.pttl(key) <= 2000:
                    break
                await asyncio.sleep(0.05)
            assert 0 < await probe.pttl(key) <= 2000
            service.unsubscribe("local-dashboard")
        finally:
            await probe.aclose()
    probe = aioredis.Redis.from_url(redis_url)
    try:
        assert await probe.exists(key) == 0  # withdrawn on shutdown
    finally:
        await probe.aclose()
