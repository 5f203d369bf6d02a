"""/health really notices a database that stops, and recovers when it returns; the process keeps serving."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from tests.support.databases import create_database, drop_database, require_env
from tests.support.tcp_proxy import TcpProxy
from tests.support.users import make_user


async def _wait_for(client, status: int, attempts: int = 60, headers: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    body: dict = {}
    for _ in range(attempts):
        response = await client.get("/health", headers=headers or {})
        body = await response.get_json()
        if response.status_code == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/health never answered {status}: {body}")


async def test_health_detects_a_stopped_postgres_and_recovers(make_app) -> None:
    base = require_env("TEST_DATABASE_URL")
    if not base:
        import pytest

        pytest.skip("TEST_DATABASE_URL not set")
    url = await create_database(base)
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    try:
        async with make_app(DATABASE_URL=proxied) as (app, client):
            _, admin = await make_user(app, role="admin")
            healthy = await _wait_for(client, 200, headers={"x-api-key": admin})
            assert healthy["checks"]["database"] == {
                "status": "ok",
                "backend": "postgresql",
                "latency_ms": healthy["checks"]["database"]["latency_ms"],
            }

            await proxy.stop()
            down = await _wait_for(client, 503)
            assert down["status"] == "unhealthy"
            # Anonymous callers learn that the database check failed, never why (no address, no driver text).
            assert down["checks"]["database"] == {"status": "error"}
            assert set(down) == {"status", "service", "version", "async_mode", "checks"}
            assert str(proxy.port) not in str(down) and "password" not in str(down)
            # An admin key cannot be checked while the database is down: it gets the same public answer.
            as_admin = await client.get("/health", headers={"x-api-key": admin})
            assert as_admin.status_code == 503 and await as_admin.get_json() == down
            # Liveness is unaffected: the process is fine, one dependency is not.
            assert (await client.get("/health/live")).status_code == 200
            # Features that need the database fail with a clear JSON error, not a crash.
            me = await client.get("/api/me", headers={"x-api-key": "usr_x_y"})
            assert me.status_code == 503, await me.get_data(as_text=True)
            assert (await me.get_json())["error"] == "database_unavailable"

            await proxy.start()
            recovered = await _wait_for(client, 200, attempts=100)
            assert recovered["checks"]["database"]["status"] == "ok"
    finally:
        await proxy.stop()
        await drop_database(base, url)


async def test_boot_with_unreachable_database_serves_liveness_and_reports_unhealthy(make_app) -> None:
    """A database that is down at boot degrades readiness; the app still starts and retries."""
    from quart_app import create_app
    from quart_app.settings import Settings

    app = create_app(
        Settings.from_env({"APP_ENV": "test", "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    )
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/health/live")).status_code == 200
        response = await client.get("/health")
        body = await response.get_json()
        assert response.status_code == 503
        assert body["checks"]["database"] == {"status": "error"}  # the reason (host, port, driver text): admins only
        assert "nowhere" not in str(body) and "127.0.0.1" not in str(body)
        me = await client.get("/api/me", headers={"x-api-key": "usr_a_b"})
        assert me.status_code == 503
        assert (await me.get_json())["error"] == "database_unavailable"
