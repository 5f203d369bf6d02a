"""Namespace "/monitoring" against the app under an in-process hypercorn: who may connect, what
`start_monitoring` accepts, and the one emitter that runs only while someone listens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from quart import Quart

from fakes import FakeAuth0
from fakes.server import FakeServerThread
from quart_app import create_app
from quart_app.monitoring.feature import MonitoringFeature
from quart_app.settings import Settings
from tests.monitoring.clients import Dashboard
from tests.sockets.clients import wait_until
from tests.support.inprocess import served
from tests.support.users import make_user

HANG_GUARD = 20.0
ROLE_CLAIM = "https://voice.example/roles"
ADMIN_REQUIRED = {"message": "Admin role required", "data": {"error": "forbidden"}}


@pytest.fixture(scope="module")
def auth0() -> Iterator[FakeAuth0]:
    fake = FakeAuth0(domain="tenant.monitoring.local", audience="https://api.monitoring.local")
    with FakeServerThread(fake):
        yield fake


@pytest.fixture
async def server(tmp_path: Path, auth0: FakeAuth0) -> AsyncIterator[tuple[Quart, str]]:
    settings = Settings.from_env(
        {
            "APP_ENV": "test",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/monitoring.db",
            "AUTH0_DOMAIN": auth0.domain,
            "AUTH0_AUDIENCE": auth0.audience,
            "AUTH0_BASE_URL": auth0.base_url,
            "AUTH0_ROLE_CLAIM": ROLE_CLAIM,
        }
    )
    app = create_app(settings)
    async with served(app) as port:
        yield app, f"http://127.0.0.1:{port}"


def service_of(app: Quart) -> Any:
    return next(f for f in app.extensions["features"] if isinstance(f, MonitoringFeature)).service


async def refusal(url: str, auth: Any) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.on("connect_error", lambda data=None: refused.done() or refused.set_result(data), namespace="/monitoring")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, namespaces=["/monitoring"], auth=auth, transports=["websocket"], wait_timeout=10)
    result = await asyncio.wait_for(refused, HANG_GUARD)
    await client.disconnect()
    return result


async def test_only_admins_connect(server: tuple[Quart, str], auth0: FakeAuth0) -> None:
    app, url = server
    _, user_key = await make_user(app)
    _, admin_key = await make_user(app, role="admin")
    session_token = app.extensions["resources"].sessions.issue((await make_user(app))[0].id)

    # Anyone who is not an admin is refused at connect, whatever the credential.
    assert await refusal(url, None) == {"message": "Authentication required: pass auth: {token}"}
    assert await refusal(url, {"token": "usr_nobody_forged"}) == {"message": "Invalid or expired authentication token"}
    assert await refusal(url, {"token": user_key}) == ADMIN_REQUIRED
    assert await refusal(url, {"token": session_token}) == ADMIN_REQUIRED
    assert await refusal(url, {"token": auth0.mint(sub="auth0|plain-user")}) == ADMIN_REQUIRED
    assert await refusal(url, {"token": auth0.mint(sub="auth0|reader", claims={"permissions": ["read"]})}) == (
        ADMIN_REQUIRED
    )
    assert service_of(app).subscribers == 0

    # Admins: an API key of an admin user, an Auth0 token with the admin permission or the admin role.
    tokens = [
        admin_key,
        auth0.mint(sub="auth0|ops", claims={"permissions": ["admin"]}),
        auth0.mint(sub="auth0|lead", claims={ROLE_CLAIM: ["admin"]}),
    ]
    for token in tokens:
        dashboard = await Dashboard().connect(url, token)
        try:
            assert (await dashboard.call("start_monitoring", {"interval_s": 1}))["ok"] is True
            update = await dashboard.recorder.wait_for("monitoring_update", within=HANG_GUARD)
            assert update["served_by"] == app.extensions["resources"].settings.instance_id
        finally:
            await dashboard.close()


async def test_start_monitoring_checks_the_interval(server: tuple[Quart, str]) -> None:
    app, url = server
    _, key = await make_user(app, role="admin")
    dashboard = await Dashboard().connect(url, key)
    try:
        for bad in ({"interval_s": 0}, {"interval_s": 61}, {"interval_s": "2"}, {"interval_s": True}, [1]):
            ack = await dashboard.call("start_monitoring", bad)
            assert ack["ok"] is False and ack["error"] == "validation_error", (bad, ack)
        await dashboard.recorder.wait_for("monitoring_error")
        assert service_of(app).subscribers == 0 and not service_of(app).emitter_running
        assert dashboard.updates() == []
    finally:
        await dashboard.close()


async def test_updates_carry_the_figures_and_stop_on_request(server: tuple[Quart, str]) -> None:
    app, url = server
    _, key = await make_user(app, role="admin")
    dashboard = await Dashboard().connect(url, key)
    service = service_of(app)
    try:
        assert await dashboard.call("start_monitoring", {"interval_s": 1}) == {"ok": True, "interval_s": 1.0}
        first = await dashboard.next_update()
        second = await dashboard.next_update()  # periodic, not only the first one
        assert second["timestamp"] >= first["timestamp"]
        for key_name in (
            "timestamp",
            "instances",
            "active_calls",
            "connections",
            "live_streams",
            "recent_calls",
            "usage_today",
            "provider_status",
            "event_loop_lag_ms",
        ):
            assert key_name in second, key_name
        assert second["interval_s"] == 1.0 and second["scope"] == "local" and second["instance_count"] == 1
        assert second["connections"]["/monitoring"] == 1
        assert second["instances"][0]["version"] and second["instances"][0]["uptime_s"] >= 0
        assert {"p50", "p99"} <= set(second["event_loop_lag_ms"])
        assert {f["key"] for f in second["figures"]} >= {"active_calls", "live_streams"}

        assert await dashboard.call("stop_monitoring") == {"ok": True}
        await wait_until(lambda: _async(service.emitter_running), lambda running: not running, HANG_GUARD)
        assert service.subscribers == 0
    finally:
        await dashboard.close()


async def test_one_emitter_for_every_subscriber_stopping_with_the_last(server: tuple[Quart, str]) -> None:
    app, url = server
    _, key = await make_user(app, role="admin")
    service = service_of(app)
    dashboards = [await Dashboard().connect(url, key) for _ in range(3)]
    try:
        for dashboard, interval in zip(dashboards, (1, 2, 1), strict=True):
            assert (await dashboard.call("start_monitoring", {"interval_s": interval}))["ok"]
        for dashboard in dashboards:
            await dashboard.next_update()
        emitters = [t for t in asyncio.all_tasks() if t.get_name() == "monitoring-emitter" and not t.done()]
        assert len(emitters) == 1 and service.subscribers == 3

        # Subscribers leave one by one: the emitter keeps running for the others...
        await dashboards[0].close()
        await dashboards[1].close()
        await wait_until(lambda: _async(service.subscribers), lambda n: n == 1, HANG_GUARD)
        assert service.emitter_running
        await dashboards[2].next_update()
        # ...and stops with the last, a disconnect without stop_monitoring.
        await dashboards[2].close()
        await wait_until(lambda: _async(service.emitter_running), lambda running: not running, HANG_GUARD)
        assert service.subscribers == 0
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "monitoring-emitter" and not t.done()]

        # A new subscriber starts it again.
        again = await Dashboard().connect(url, key)
        dashboards.append(again)
        assert (await again.call("start_monitoring", {"interval_s": 1}))["ok"]
        await again.next_update()
        assert service.emitter_running
    finally:
        for dashboard in dashboards:
            await dashboard.close()


async def _async(value: Any) -> Any:
    return value
