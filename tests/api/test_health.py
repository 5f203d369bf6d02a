"""/, /health and /health/live, in process and against a live hypercorn."""

from __future__ import annotations

import httpx

from tests.support.live_server import LiveServer


async def test_health_reports_checks_and_unconfigured_providers(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.get("/health")
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
    assert response.headers["X-Request-ID"]


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
        body = await (await client.get("/health")).get_json()
    assert body["checks"]["message_queue"]["status"] == "ok"
    assert body["checks"]["message_queue"]["backend"] == "redis"


async def test_health_reports_unreachable_redis(make_app) -> None:
    async with make_app(REDIS_URL="redis://127.0.0.1:1/0") as (app, client):
        response = await client.get("/health")
        body = await response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["message_queue"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"


def test_live_server_serves_health(live_server: LiveServer) -> None:
    response = httpx.get(live_server.url + "/health")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"
