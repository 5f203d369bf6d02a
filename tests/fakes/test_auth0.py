"""FakeAuth0: JWKS, minted tokens verified by python-jose, /userinfo and /oauth/token."""

from __future__ import annotations

import time

import httpx
import pytest
from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from fakes import FakeAuth0, run_fake
from fakes.auth0 import new_private_key, private_pem


async def fetch_jwks(fake: FakeAuth0) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.get(fake.base_url + "/.well-known/jwks.json")
    response.raise_for_status()
    return response.json()


def verify(token: str, jwks: dict, fake: FakeAuth0) -> dict:
    """What the service does: pick the JWK by kid and let python-jose check signature and claims."""
    kid = jwt.get_unverified_header(token)["kid"]
    keys = [k for k in jwks["keys"] if k["kid"] == kid]
    if not keys:
        raise JWTError("kid not in JWKS")
    return jwt.decode(token, keys[0], algorithms=["RS256"], audience=fake.audience, issuer=fake.issuer)


async def test_jwks_shape_and_fetch_count(auth0_fake):
    before = auth0_fake.jwks_fetches
    jwks = await fetch_jwks(auth0_fake)
    (key,) = jwks["keys"]
    assert {"kty", "use", "n", "e", "kid", "alg", "x5c", "x5t"} <= key.keys()
    assert (key["kty"], key["use"], key["alg"], key["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert key["kid"] == auth0_fake.current_kid
    assert auth0_fake.jwks_fetches == before + 1


async def test_minted_token_verifies_with_served_jwks(auth0_fake):
    token = auth0_fake.mint({"scope": "read:calls", "https://voice/roles": ["admin"]}, sub="auth0|abc")
    claims = verify(token, await fetch_jwks(auth0_fake), auth0_fake)
    assert claims["iss"] == "https://tenant.example.auth0.com/" and claims["aud"] == "https://api.voice.test"
    assert claims["sub"] == "auth0|abc" and claims["https://voice/roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 3600 and "nbf" not in claims
    assert "exp" not in jwt.get_unverified_claims(auth0_fake.mint({"exp": None}))


async def test_expired_future_and_wrong_audience_tokens_are_refused(auth0_fake):
    jwks = await fetch_jwks(auth0_fake)
    with pytest.raises(ExpiredSignatureError):
        verify(auth0_fake.mint(iat=int(time.time()) - 7200), jwks, auth0_fake)
    with pytest.raises(JWTClaimsError):
        verify(auth0_fake.mint(nbf=int(time.time()) + 600), jwks, auth0_fake)
    with pytest.raises(JWTClaimsError):
        verify(auth0_fake.mint(audience="https://other.api"), jwks, auth0_fake)
    with pytest.raises(JWTClaimsError):
        verify(auth0_fake.mint(issuer="https://evil.example/"), jwks, auth0_fake)


async def test_forged_tokens_are_refused(auth0_fake):
    jwks = await fetch_jwks(auth0_fake)
    with pytest.raises(JWTError):  # right kid, foreign key
        verify(auth0_fake.mint(key=private_pem(new_private_key())), jwks, auth0_fake)
    with pytest.raises(JWTError):  # HS256 signed with a guessable secret
        verify(auth0_fake.mint(alg="HS256", key="secret"), jwks, auth0_fake)
    with pytest.raises(JWTError):
        verify(auth0_fake.mint_unsigned(), jwks, auth0_fake)


async def test_rotation_publishes_new_key_and_retires_old():
    async with run_fake(FakeAuth0()) as fake:
        old_token = fake.mint()
        old_kid = fake.current_kid
        new_kid = fake.rotate()
        jwks = await fetch_jwks(fake)
        assert [k["kid"] for k in jwks["keys"]] == [old_kid, new_kid]
        assert jwt.get_unverified_header(fake.mint())["kid"] == new_kid
        verify(old_token, jwks, fake)
        fake.retire(old_kid)
        jwks = await fetch_jwks(fake)
        assert [k["kid"] for k in jwks["keys"]] == [new_kid]
        with pytest.raises(JWTError):
            verify(old_token, jwks, fake)
        fake.rotate(retire_old=True)
        assert fake.kids == [fake.current_kid] != [new_kid]
        assert fake.jwks_fetches == 2


async def test_userinfo_profile_and_errors(auth0_fake):
    async with httpx.AsyncClient(base_url=auth0_fake.base_url) as http:
        ok = await http.get("/userinfo", headers={"Authorization": f"Bearer {auth0_fake.mint()}"})
        assert ok.status_code == 200
        profile = ok.json()
        assert profile["sub"] == "auth0|fake-user-1" and profile["email"] == "user@example.com"
        assert {"email_verified", "name", "nickname", "picture", "updated_at"} <= profile.keys()
        bad = await http.get("/userinfo", headers={"Authorization": "Bearer not-a-jwt"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
        challenge = bad.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="tenant.example.auth0.com", error="invalid_token"')
        missing = await http.get("/userinfo")
        assert missing.status_code == 401
        auth0_fake.fail_next(503, path="/userinfo")
        jwks_still_ok = await http.get("/.well-known/jwks.json")
        failed = await http.get("/userinfo", headers={"Authorization": f"Bearer {auth0_fake.mint()}"})
        assert jwks_still_ok.status_code == 200 and failed.status_code == 503
        auth0_fake.hang_next(2, path="/userinfo")
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/userinfo", headers={"Authorization": f"Bearer {auth0_fake.mint()}"}, timeout=0.3)


async def test_client_credentials_grant_json_and_form(auth0_fake):
    form = {
        "grant_type": "client_credentials",
        "client_id": auth0_fake.client_id,
        "client_secret": auth0_fake.client_secret,
        "audience": auth0_fake.audience,
    }
    async with httpx.AsyncClient(base_url=auth0_fake.base_url) as http:
        as_json = await http.post("/oauth/token", json=form)
        as_form = await http.post("/oauth/token", data=form)
        wrong = await http.post("/oauth/token", json={**form, "client_secret": "nope"})
    for response in (as_json, as_form):
        body = response.json()
        assert response.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
        claims = verify(body["access_token"], auth0_fake.jwks(), auth0_fake)
        assert claims["sub"] == f"{auth0_fake.client_id}@clients" and claims["gty"] == "client-credentials"
    assert wrong.status_code == 403 and wrong.json()["error"] == "access_denied"
    assert auth0_fake.requests_to("/oauth/token")[0].json["client_secret"] == "***"


async def test_password_grant(auth0_fake):
    auth0_fake.add_user("auth0|dev-2", "dev@example.com", password="pw-2", name="Dev Two")
    base = {
        "grant_type": "password",
        "client_id": auth0_fake.client_id,
        "client_secret": auth0_fake.client_secret,
        "username": "dev@example.com",
        "scope": "openid profile",
    }
    async with httpx.AsyncClient(base_url=auth0_fake.base_url) as http:
        ok = await http.post("/oauth/token", data={**base, "password": "pw-2"})
        wrong = await http.post("/oauth/token", data={**base, "password": "pw-3"})
        info = await http.get("/userinfo", headers={"Authorization": f"Bearer {ok.json()['access_token']}"})
    assert verify(ok.json()["access_token"], auth0_fake.jwks(), auth0_fake)["sub"] == "auth0|dev-2"
    assert ok.json()["scope"] == "openid profile" and "id_token" in ok.json()
    assert wrong.status_code == 403 and wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Wrong email or password.",
    }
    assert info.json()["name"] == "Dev Two"


async def test_openid_configuration_points_at_the_fake(auth0_fake):
    async with httpx.AsyncClient() as http:
        config = (await http.get(auth0_fake.base_url + "/.well-known/openid-configuration")).json()
    assert config["issuer"] == auth0_fake.issuer
    assert config["jwks_uri"] == auth0_fake.base_url + "/.well-known/jwks.json"
