"""Per-key and per-user request limits: 429 with Retry-After once the minute's budget is spent, on both backends."""

from __future__ import annotations

from quart_app.db import api_keys
from tests.support.users import make_user


async def test_rate_limit_per_key(make_app, backend_env) -> None:
    async with make_app(**backend_env, RATE_LIMIT_PER_MINUTE="3") as (app, client):
        _, key = await make_user(app)
        _, other_key = await make_user(app)
        statuses = [(await client.get("/api/protected/test", headers={"x-api-key": key})).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = await client.get("/api/protected/test", headers={"x-api-key": key})
        assert limited.status_code == 429
        body = await limited.get_json()
        assert body["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert body["retry_after"] == int(limited.headers["Retry-After"])
        # Another key has its own budget.
        assert (await client.get("/api/protected/test", headers={"x-api-key": other_key})).status_code == 200


async def test_counters_are_shared_between_app_instances(make_app, backend_env) -> None:
    """Two app instances on the same Redis share one budget; in memory each has its own."""
    shared = "REDIS_URL" in backend_env
    async with make_app(**backend_env, RATE_LIMIT_PER_MINUTE="2") as (app_a, client_a):
        _, key = await make_user(app_a)
        async with make_app(**backend_env, RATE_LIMIT_PER_MINUTE="2") as (_, client_b):
            assert (await client_a.get("/api/protected/test", headers={"x-api-key": key})).status_code == 200
            assert (await client_b.get("/api/protected/test", headers={"x-api-key": key})).status_code == 200
            third = await client_b.get("/api/protected/test", headers={"x-api-key": key})
            assert third.status_code == (429 if shared else 200)


async def test_redis_outage_fails_open_for_rate_limits_and_closed_for_pins(make_app) -> None:
    """With Redis unreachable the API keeps serving (no rate limit), but PIN sign-in refuses clearly."""
    async with make_app(REDIS_URL="redis://127.0.0.1:1/0") as (app, client):
        user, key = await make_user(app, pin="2468")
        response = await client.get("/api/protected/test", headers={"x-api-key": key})
        assert response.status_code == 200
        pin = await client.post("/api/auth/pin", json={"email": user.email, "pin": "2468"})
        assert pin.status_code == 503
        assert (await pin.get_json())["error"] == "message_queue_unavailable"


async def test_more_keys_do_not_buy_more_budget(make_app, backend_env) -> None:
    """Requests count against the key and against its user: spreading them over many keys gains nothing."""
    async with make_app(**backend_env, RATE_LIMIT_PER_MINUTE="3") as (app, client):
        user, key = await make_user(app)
        db = app.extensions["resources"].db()
        extra = [(await api_keys.create_api_key(db, user.id, f"k{i}"))[1] for i in range(3)]
        _, stranger = await make_user(app)

        statuses = [
            (await client.get("/api/protected/test", headers={"x-api-key": k})).status_code for k in (key, *extra)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/api/protected/test", headers={"x-api-key": extra[1]})
        assert limited.status_code == 429 and (await limited.get_json())["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Another user is not affected.
        assert (await client.get("/api/protected/test", headers={"x-api-key": stranger})).status_code == 200
