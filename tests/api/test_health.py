"""/, /health and /health/live, in process and against a live hypercorn.

`/health` tells anyone the status, version, async mode and each check's ok/error state; the detail (instance,
backends, latencies, error text, providers, uptime, connections) only to an admin credential. Any other
credential, valid or not, gets exactly the anonymous answer.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.live_server import LiveServer
from tests.support.users import make_user

PUBLIC_FIELDS = {"status", "service", "version", "async_mode", "checks"}
DETAIL_FIELDS = ("instance", "server", "uptime_s", "connections")


def assert_public(body: dict[str, Any]) -> None:
    """Only the public fields; each check only its status (no backend, latency or error text)."""
    assert set(body) == PUBLIC_FIELDS, body
    assert "providers" not in body["checks"], body
    for name, check in body["checks"].items():
        if name != "draining":
            assert set(check) == {"status"}, (name, check)


async def test_health_reports_checks_and_unconfigured_providers(make_app) -> None:
    async with make_app() as (app, client):
        _, admin = await make_user(app, role="admin")
        response = await client.get("/health", headers={"x-api-key": admin})
        body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert body["async_mode"] == "asgi"
    assert body["server"] == "hypercorn"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["backend"] == "sqlite"
    assert body["checks"]["message_queue"] == {"status": "ok", "backend": "memory"}
    assert body["checks"]["providers"] == {
        "auth0": "unconfigured",
        "openai": "unconfigured",
        "deepgram": "unconfigured",
        "deepseek": "unconfigured",
        "twilio": "unconfigured",
    }
    assert body["connections"]["/"] == 0 and all(count == 0 for count in body["connections"].values())
    assert body["uptime_s"] >= 0
    assert body["instance"]
    assert response.headers["X-Request-ID"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_anonymous_and_non_admin_callers_get_only_the_public_answer(make_app) -> None:
    async with make_app() as (app, client):
        _, user_key = await make_user(app)
        anonymous = await client.get("/health")
        body = await anonymous.get_json()
        assert anonymous.status_code == 200
        assert_public(body)
        assert body["status"] == "healthy" and body["async_mode"] == "asgi" and body["version"]
        assert body["checks"]["database"] == {"status": "ok"}
        assert body["checks"]["message_queue"] == {"status": "ok"}
        assert anonymous.headers["Cache-Control"] == "no-store"
        assert {"authorization", "x-api-key"} <= {v.strip().lower() for v in anonymous.headers["Vary"].split(",")}
        # A user's key, a forged or revoked-looking key, a bad session token and a garbage bearer token: the same
        # answer and status as no credential at all (no 401: balancers call /health without one).
        for headers in (
            {"x-api-key": user_key},
            {"x-api-key": "usr_forged_key"},
            {"x-api-key": "x" * 300},
            {"Authorization": "Bearer vst_forged.token"},
            {"Authorization": "Bearer not.a.jwt"},
        ):
            other = await client.get("/health", headers=headers)
            assert other.status_code == 200, headers
            assert await other.get_json() == body, headers


async def test_liveness_and_index(make_app) -> None:
    async with make_app() as (app, client):
        live = await client.get("/health/live")
        index = await (await client.get("/")).get_json()
    assert live.status_code == 200
    paths = {route["path"] for route in index["routes"]}
    assert {"/", "/health", "/health/live"} <= paths
    assert "/" in index["socketio"]["namespaces"]
    assert index["version"]


async def test_unknown_route_is_json_404_with_request_id(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.get("/no/such/route", headers={"X-Request-ID": "abc-123"})
        body = await response.get_json()
    assert response.status_code == 404
    assert body["error"] == "not_found"
    assert body["request_id"] == "abc-123"


async def test_health_with_redis_configured(make_app, redis_url: str) -> None:
    async with make_app(REDIS_URL=redis_url) as (app, client):
        _, admin = await make_user(app, role="admin")
        body = await (await client.get("/health", headers={"x-api-key": admin})).get_json()
        public = await (await client.get("/health")).get_json()
    assert body["checks"]["message_queue"]["status"] == "ok"
    assert body["checks"]["message_queue"]["backend"] == "redis"
    assert_public(public)
    assert public["checks"]["message_queue"] == {"status": "ok"}


async def test_health_reports_unreachable_redis(make_app) -> None:
    async with make_app(REDIS_URL="redis://127.0.0.1:1/0") as (app, client):
        _, admin = await make_user(app, role="admin")
        response = await client.get("/health")
        body = await response.get_json()
        text = await response.get_data(as_text=True)
        detailed = await client.get("/health", headers={"x-api-key": admin})
        detail = await detailed.get_json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["message_queue"] == {"status": "error"}
    assert body["checks"]["database"] == {"status": "ok"}
    # The dependency's error text (address, port, errno) is for admins only.
    assert_public(body)
    assert "127.0.0.1" not in text and "redis" not in text.lower()
    assert detailed.status_code == 503
    assert detail["checks"]["message_queue"]["status"] == "error"
    assert detail["checks"]["message_queue"]["backend"] == "redis"
    assert detail["checks"]["message_queue"]["error"]


def test_live_server_serves_health(live_server: LiveServer) -> None:
    response = httpx.get(live_server.url + "/health")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"
    assert_public(response.json())
    assert not set(DETAIL_FIELDS) & set(response.json())
