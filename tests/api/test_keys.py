"""API keys over REST: shown once, listed without secrets, revoked for good; on both backends."""

from __future__ import annotations

from tests.support.users import make_user, unique_email


async def test_key_lifecycle(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        user, key = await make_user(app)
        headers = {"x-api-key": key}

        created = await client.post("/api/keys", json={"name": "laptop"}, headers=headers)
        assert created.status_code == 201
        body = await created.get_json()
        new_key = body["key"]
        assert new_key.startswith("usr_" + user.id.removeprefix("usr_") + "_")
        assert body["name"] == "laptop" and body["revoked"] is False

        listed = await (await client.get("/api/keys", headers={"x-api-key": new_key})).get_json()
        assert {k["name"] for k in listed["keys"]} == {"laptop", "test"}
        text = str(listed)
        assert new_key not in text and key not in text and "key_hash" not in text
        laptop = next(k for k in listed["keys"] if k["name"] == "laptop")
        assert laptop["last_used_at"] is not None  # it was just used to list

        me = await (await client.get("/api/me", headers={"x-api-key": new_key})).get_json()
        assert me["user"]["id"] == user.id and me["auth"] == "api_key" and me["is_admin"] is False

        revoked = await client.delete(f"/api/keys/{laptop['id']}", headers=headers)
        assert revoked.status_code == 204
        after = await client.get("/api/me", headers={"x-api-key": new_key})
        assert after.status_code == 401
        assert (await after.get_json())["error"] == "invalid_token"
        assert "invalid_token" in after.headers["WWW-Authenticate"]
        again = await client.delete(f"/api/keys/{laptop['id']}", headers=headers)
        assert again.status_code == 404


async def test_cannot_revoke_someone_elses_key(make_app) -> None:
    async with make_app() as (app, client):
        _, alice_key = await make_user(app)
        _, bob_key = await make_user(app)
        bobs = await (await client.get("/api/keys", headers={"x-api-key": bob_key})).get_json()
        response = await client.delete(f"/api/keys/{bobs['keys'][0]['id']}", headers={"x-api-key": alice_key})
        assert response.status_code == 404
        still = await client.get("/api/me", headers={"x-api-key": bob_key})
        assert still.status_code == 200


async def test_missing_and_garbage_credentials(make_app) -> None:
    async with make_app() as (app, client):
        missing = await client.get("/api/me")
        assert missing.status_code == 401
        assert (await missing.get_json())["error"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        garbage = await client.get("/api/me", headers={"x-api-key": "usr_nope_nope"})
        assert garbage.status_code == 401
        assert (await garbage.get_json())["error"] == "invalid_token"
        long_key = await client.get("/api/me", headers={"x-api-key": "usr_" + "a" * 5000})
        assert long_key.status_code == 401


async def test_jwt_without_auth0_configured_is_503_naming_variables(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.get("/api/me", headers={"Authorization": "Bearer eyJhbGciOi.x.y"})
        body = await response.get_json()
    assert response.status_code == 503
    assert body["error"] == "provider_unconfigured"
    assert "AUTH0_DOMAIN" in body["message"] and "AUTH0_AUDIENCE" in body["message"]


async def test_key_name_is_validated(make_app) -> None:
    async with make_app() as (app, client):
        _, key = await make_user(app)
        response = await client.post("/api/keys", json={"name": ""}, headers={"x-api-key": key})
        body = await response.get_json()
    assert response.status_code == 400
    assert body["error"] == "validation_error"
    assert "name" in body["fields"]


async def test_a_pin_session_cannot_mint_api_keys(make_app, backend_env) -> None:
    """A PIN (4-8 digits) and a 12-hour session must not become a credential that never expires."""
    # The per-address sign-in limit is lifted: Redis counters are shared with the rest of the suite.
    async with make_app(**backend_env, PIN_SIGNIN_ADDRESS_PER_MINUTE="100000") as (app, client):
        user, key = await make_user(app, pin="314159", email=unique_email("keys"))
        signed = await client.post("/api/auth/pin", json={"email": user.email, "pin": "314159"})
        session = {"Authorization": f"Bearer {(await signed.get_json())['token']}"}

        refused = await client.post("/api/keys", json={"name": "from-pin"}, headers=session)
        assert refused.status_code == 403
        body = await refused.get_json()
        assert body["error"] == "stronger_auth_required" and "API key" in body["message"]
        listed = await (await client.get("/api/keys", headers=session)).get_json()
        assert [k["name"] for k in listed["keys"]] == ["test"]  # nothing was created
        # An existing API key (or an Auth0 token) still can.
        assert (await client.post("/api/keys", json={"name": "laptop"}, headers={"x-api-key": key})).status_code == 201
