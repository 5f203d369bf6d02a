"""PIN set and sign-in, lockout after repeated failures, and the legacy /mobile-auth switch."""

from __future__ import annotations

from typing import Any

from tests.support.users import make_user, unique_email

# Redis counters outlive a test and every in-process client has the same address: tests that are not about
# the per-address sign-in limit lift it, so the suite's sign-ins within a minute do not add up to it.
OPEN = {"PIN_SIGNIN_ADDRESS_PER_MINUTE": "100000"}


async def test_set_pin_then_sign_in_and_use_session(make_app, backend_env) -> None:
    async with make_app(**backend_env, **OPEN) as (app, client):
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
    async with make_app(**backend_env, **OPEN, PIN_MAX_ATTEMPTS="5", PIN_LOCKOUT_SECONDS="900") as (app, client):
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
    # A removed route answers 410 to anything: another shape, no JSON, an empty body.
    async with make_app() as (_, client):
        for kwargs in ({"json": {"phone": 5}}, {"data": "not json"}, {"json": []}, {}):
            assert (await client.post("/mobile-auth", **kwargs)).status_code == 410, kwargs


async def test_mobile_auth_when_enabled_warns(make_app, caplog) -> None:
    async with make_app(ALLOW_INSECURE_SESSION_AUTH="true") as (app, client):
        user, _ = await make_user(app)
        response = await client.post("/mobile-auth", json={"email": user.email})
        assert response.status_code == 200
        assert (await response.get_json())["token"].startswith("vst_")
        assert (await client.post("/mobile-auth", json={"phone": 5})).status_code == 400
    warnings = [r.getMessage() for r in caplog.records if "SECURITY WARNING" in r.getMessage()]
    assert len(warnings) >= 2  # once at startup, once for the sign-in


# ----------------------------------------------------------------- finding 7: PIN changes and sessions


async def _sign_in(client: Any, email: str, pin: str) -> str:
    response = await client.post("/api/auth/pin", json={"email": email, "pin": pin})
    assert response.status_code == 200, await response.get_json()
    return str((await response.get_json())["token"])


async def _put_pin(client: Any, headers: dict[str, str], **body: str) -> tuple[int, str]:
    response = await client.put("/api/me/pin", json=body, headers=headers)
    if response.status_code == 204:
        return 204, ""
    return response.status_code, (await response.get_json())["error"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_changing_a_pin_needs_the_old_one_and_ends_its_sessions(make_app, backend_env) -> None:
    async with make_app(**backend_env, **OPEN) as (app, client):
        user, key = await make_user(app, pin="482913")
        token = await _sign_in(client, user.email, "482913")
        session = _bearer(token)

        assert await _put_pin(client, session, pin="111222") == (403, "current_pin_required")
        assert await _put_pin(client, session, pin="111222", current_pin="999999") == (403, "invalid_current_pin")
        # An API key (or Auth0 token) must also show the PIN it replaces.
        assert await _put_pin(client, {"x-api-key": key}, pin="111222") == (403, "current_pin_required")
        assert (await client.get("/api/me", headers=session)).status_code == 200  # nothing changed so far

        assert await _put_pin(client, session, pin="111222", current_pin="482913") == (204, "")
        ended = await client.get("/api/me", headers=session)
        assert ended.status_code == 401 and (await ended.get_json())["error"] == "invalid_token"
        assert (await client.post("/api/auth/pin", json={"email": user.email, "pin": "482913"})).status_code == 401

        fresh = _bearer(await _sign_in(client, user.email, "111222"))
        assert (await client.get("/api/me", headers=fresh)).status_code == 200
        # A PIN session may not remove the PIN; an API key may (that is how a forgotten PIN is reset), and
        # doing so ends every PIN session.
        assert (await client.delete("/api/me/pin", headers=fresh)).status_code == 403
        assert (await client.delete("/api/me/pin", headers={"x-api-key": key})).status_code == 204
        assert (await client.get("/api/me", headers=fresh)).status_code == 401
        # With no PIN set, a first PIN needs no current one.
        assert await _put_pin(client, {"x-api-key": key}, pin="5050") == (204, "")
        assert await _sign_in(client, user.email, "5050")


async def test_setting_the_same_pin_again_still_ends_sessions(make_app) -> None:
    async with make_app() as (app, client):
        user, key = await make_user(app, pin="7777")
        session = _bearer(await _sign_in(client, user.email, "7777"))
        assert await _put_pin(client, {"x-api-key": key}, pin="7777", current_pin="7777") == (204, "")
        assert (await client.get("/api/me", headers=session)).status_code == 401


async def test_wrong_current_pins_count_towards_the_lockout(make_app, backend_env) -> None:
    """A stolen session or key cannot be used to search for the PIN through PUT /api/me/pin."""
    async with make_app(**backend_env, **OPEN, PIN_MAX_ATTEMPTS="3") as (app, client):
        user, key = await make_user(app, pin="86420")
        headers = {"x-api-key": key}
        assert await _put_pin(client, headers, pin="1111", current_pin="0000") == (403, "invalid_current_pin")
        assert await _put_pin(client, headers, pin="1111", current_pin="0001") == (403, "invalid_current_pin")
        assert await _put_pin(client, headers, pin="1111", current_pin="0002") == (429, "locked_out")
        assert await _put_pin(client, headers, pin="1111", current_pin="86420") == (429, "locked_out")
        # The same lockout guards sign-in.
        locked = await client.post("/api/auth/pin", json={"email": user.email, "pin": "86420"})
        assert locked.status_code == 429 and (await locked.get_json())["error"] == "locked_out"


async def test_session_tokens_from_before_pin_fingerprints_are_refused(make_app) -> None:
    """A token signed with the right key but without the PIN fingerprint (the old format) is not accepted."""
    from itsdangerous import URLSafeTimedSerializer

    async with make_app(SECRET_KEY="k" * 40) as (app, client):
        user, _ = await make_user(app, pin="2580")
        legacy = "vst_" + URLSafeTimedSerializer("k" * 40, salt="voice-pin-session").dumps({"u": user.id})
        assert (await client.get("/api/me", headers=_bearer(legacy))).status_code == 401
