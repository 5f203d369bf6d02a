"""PIN set and sign-in, lockout after repeated failures, and the legacy /mobile-auth switch."""

from __future__ import annotations

from tests.support.users import make_user, unique_email


async def test_set_pin_then_sign_in_and_use_session(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        user, key = await make_user(app)
        bad = await client.put("/api/me/pin", json={"pin": "12ab"}, headers={"x-api-key": key})
        assert bad.status_code == 400
        assert (await client.put("/api/me/pin", json={"pin": "482913"}, headers={"x-api-key": key})).status_code == 204

        signed = await client.post("/api/auth/pin", json={"email": user.email, "pin": "482913"})
        assert signed.status_code == 200
        body = await signed.get_json()
        assert body["token"].startswith("vst_") and body["user"]["id"] == user.id and body["user"]["has_pin"]

        me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.status_code == 200
        assert (await me.get_json())["auth"] == "session"
        forged = body["token"][:-3] + ("aaa" if not body["token"].endswith("aaa") else "bbb")
        assert (await client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_brute_force_reaches_lockout_without_revealing_users(make_app, backend_env) -> None:
    async with make_app(**backend_env, PIN_MAX_ATTEMPTS="5", PIN_LOCKOUT_SECONDS="900") as (app, client):
        user, _ = await make_user(app, pin="739154")
        statuses = []
        for guess in ("000000", "111111", "222222", "333333"):
            response = await client.post("/api/auth/pin", json={"email": user.email, "pin": guess})
            statuses.append(response.status_code)
            assert (await response.get_json())["error"] == "invalid_credentials"
        assert statuses == [401] * 4
        fifth = await client.post("/api/auth/pin", json={"email": user.email, "pin": "444444"})
        assert fifth.status_code == 429
        body = await fifth.get_json()
        assert body["error"] == "locked_out"
        assert 890 <= body["retry_after"] <= 900
        assert int(fifth.headers["Retry-After"]) == body["retry_after"]
        assert set(body) <= {"error", "message", "retry_after", "request_id"}
        # Even the right PIN is refused while locked out.
        right = await client.post("/api/auth/pin", json={"email": user.email, "pin": "739154"})
        assert right.status_code == 429

        # An unknown user gets exactly the same answers.
        ghost = unique_email("ghost")
        ghost_statuses = [
            (await client.post("/api/auth/pin", json={"email": ghost, "pin": "123456"})).status_code for _ in range(5)
        ]
        assert ghost_statuses == [401, 401, 401, 401, 429]


async def test_success_resets_failure_count(make_app) -> None:
    async with make_app(PIN_MAX_ATTEMPTS="3") as (app, client):
        user, _ = await make_user(app, pin="5555")
        for _ in range(2):
            assert (await client.post("/api/auth/pin", json={"email": user.email, "pin": "0000"})).status_code == 401
        assert (await client.post("/api/auth/pin", json={"email": user.email, "pin": "5555"})).status_code == 200
        for _ in range(2):
            assert (await client.post("/api/auth/pin", json={"email": user.email, "pin": "0000"})).status_code == 401


async def test_user_without_pin_cannot_sign_in(make_app) -> None:
    async with make_app() as (app, client):
        user, _ = await make_user(app)
        response = await client.post("/api/auth/pin", json={"email": user.email, "pin": "00000000"})
        assert response.status_code == 401


async def test_mobile_auth_is_gone_by_default(make_app) -> None:
    async with make_app() as (app, client):
        user, _ = await make_user(app)
        response = await client.post("/mobile-auth", json={"email": user.email})
        body = await response.get_json()
    assert response.status_code == 410
    assert body["error"] == "gone" and "/api/auth/pin" in body["message"]


async def test_mobile_auth_when_enabled_warns(make_app, caplog) -> None:
    async with make_app(ALLOW_INSECURE_SESSION_AUTH="true") as (app, client):
        user, _ = await make_user(app)
        response = await client.post("/mobile-auth", json={"email": user.email})
        assert response.status_code == 200
        assert (await response.get_json())["token"].startswith("vst_")
    warnings = [r.getMessage() for r in caplog.records if "SECURITY WARNING" in r.getMessage()]
    assert len(warnings) >= 2  # once at startup, once for the sign-in
