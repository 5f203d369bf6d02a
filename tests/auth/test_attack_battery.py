"""The identity attack battery: every case is a real request against a live hypercorn server.

Run on the embedded defaults (SQLite, in-memory counters) and on PostgreSQL with Redis-backed counters.
Each hostile request must get its documented status and a JSON body without any stack trace.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from twilio.request_validator import RequestValidator

from fakes import FakeAuth0
from fakes.server import FakeServerThread
from tests.support.live_server import LiveServer

TWILIO_TOKEN = "battery-twilio-token-abcdef0123"
PUBLIC = "https://voice.example.com"
ADMIN_KEY_NOTE = "keys are created through the live API"

MIN_REFRESH_S = 0.5  # AUTH0_JWKS_MIN_REFRESH_S of the battery's server


@pytest.fixture(scope="module")
def auth0() -> Iterator[FakeAuth0]:
    fake = FakeAuth0(domain="tenant.battery.local", audience="https://api.battery.local")
    with FakeServerThread(fake):
        yield fake


@pytest.fixture
def server(live_server_factory, backend_env, auth0: FakeAuth0) -> LiveServer:
    return live_server_factory(
        **backend_env,
        AUTH0_DOMAIN=auth0.domain,
        AUTH0_AUDIENCE=auth0.audience,
        AUTH0_BASE_URL=auth0.base_url,
        AUTH0_REQUEST_TIMEOUT="1",
        AUTH0_JWKS_MIN_REFRESH_S=str(MIN_REFRESH_S),
        TWILIO_ACCOUNT_SID="AC" + "2" * 32,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PUBLIC_BASE_URL=PUBLIC,
        PIN_MAX_ATTEMPTS="5",
        # Not what the battery tests, and Redis counters are shared with the rest of the suite.
        PIN_SIGNIN_ADDRESS_PER_MINUTE="100000",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(auth0: FakeAuth0) -> str:
    """The classic key-confusion forgery: HMAC-sign with the RSA public key as the shared secret."""
    kid = auth0.current_kid
    public_pem = (
        auth0.key(kid)
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(
        json.dumps(
            {"iss": auth0.issuer, "aud": auth0.audience, "sub": "auth0|attacker", "iat": now, "exp": now + 600}
        ).encode()
    )
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def _tampered(auth0: FakeAuth0) -> str:
    header, body, signature = auth0.mint(sub="auth0|honest").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "auth0|admin"
    claims["permissions"] = ["admin"]
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _assert_clean(response: httpx.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    if error is not None:
        assert body["error"] == error, body
    return body


def _get(server: LiveServer, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(server.url + path, headers=headers, timeout=10)


def test_valid_token_creates_user_and_admin_comes_from_permissions(server: LiveServer, auth0: FakeAuth0) -> None:
    body = _assert_clean(_get(server, "/api/me", auth0.mint(sub="auth0|alice", claims={"email": "a@x.test"})), 200)
    assert body["auth"] == "auth0" and body["claims"]["sub"] == "auth0|alice" and body["is_admin"] is False
    again = _assert_clean(_get(server, "/api/me", auth0.mint(sub="auth0|alice")), 200)
    assert again["user"]["id"] == body["user"]["id"]  # created once, found by sub afterwards
    admin = _assert_clean(_get(server, "/api/me", auth0.mint(sub="auth0|root", claims={"permissions": ["admin"]})), 200)
    assert admin["is_admin"] is True
    admin_token = auth0.mint(sub="auth0|root", claims={"permissions": ["admin"]})
    assert _get(server, "/api/calls", admin_token).status_code == 200
    _assert_clean(_get(server, "/api/calls", auth0.mint(sub="auth0|alice")), 403, "forbidden")
    assert _get(server, "/api/protected/test", auth0.mint(sub="auth0|alice")).json()["auth"] == "auth0"


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "hs256_public_key",
        "expired",
        "nbf_future",
        "wrong_aud",
        "wrong_iss",
        "unknown_kid",
        "tampered",
        "truncated",
        "junk_7k",
        "not_a_jwt",
        "foreign_key_same_kid",
        "no_aud",
        "no_iss",
        "no_exp",
        "no_sub",
        "no_iat",
        "aud_list_without_ours",
        "empty_sub",
    ],
)
def test_forged_and_broken_tokens_are_401(server: LiveServer, auth0: FakeAuth0, case: str) -> None:
    from fakes.auth0 import new_private_key, private_pem

    now = int(time.time())
    tokens = {
        "alg_none": lambda: auth0.mint_unsigned(),
        "hs256_public_key": lambda: _hs256_with_public_key(auth0),
        "expired": lambda: auth0.mint(iat=now - 7200, expires_in=3600),
        "nbf_future": lambda: auth0.mint(nbf=now + 3600),
        "wrong_aud": lambda: auth0.mint(audience="https://someone-else.example"),
        "wrong_iss": lambda: auth0.mint(issuer="https://evil.auth0.com/"),
        "unknown_kid": lambda: auth0.mint(kid="forged-kid", key=private_pem(new_private_key())),
        "tampered": lambda: _tampered(auth0),
        "truncated": lambda: auth0.mint()[:-20],
        "junk_7k": lambda: "eyJ" + "A" * 7000,
        "not_a_jwt": lambda: "definitely not a token",
        "foreign_key_same_kid": lambda: auth0.mint(key=private_pem(new_private_key())),
        # python-jose skips the audience check when the claim is absent: every registered claim is required.
        "no_aud": lambda: auth0.mint(claims={"aud": None}),
        "no_iss": lambda: auth0.mint(claims={"iss": None}),
        "no_exp": lambda: auth0.mint(claims={"exp": None}),
        "no_sub": lambda: auth0.mint(claims={"sub": None}),
        "no_iat": lambda: auth0.mint(claims={"iat": None}),
        "aud_list_without_ours": lambda: auth0.mint(audience=["https://someone-else.example", "https://x.test"]),
        "empty_sub": lambda: auth0.mint(sub=""),
    }
    response = _get(server, "/api/me", tokens[case]())
    body = _assert_clean(response, 401, "invalid_token")
    assert "Invalid or expired authentication token" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="voice-backend", error="invalid_token"')


def test_100kb_junk_token_is_rejected_cleanly(server: LiveServer) -> None:
    response = _get(server, "/api/me", "x" * 100_000)
    body = _assert_clean(response, 401, "invalid_token")
    assert len(response.content) < 2000  # the junk is not echoed back
    assert "too large" in body["message"]
    assert _get(server, "/health/live").status_code == 200
    in_body = httpx.post(server.url + "/api/auth/pin", json={"email": "x" * 100_000, "pin": "1234"}, timeout=10)
    _assert_clean(in_body, 400, "validation_error")


def test_unknown_kids_cannot_hammer_auth0(server: LiveServer, auth0: FakeAuth0) -> None:
    from fakes.auth0 import new_private_key, private_pem

    forger = private_pem(new_private_key())
    before = auth0.jwks_fetches
    started = time.monotonic()
    for i in range(25):
        _assert_clean(_get(server, "/api/me", auth0.mint(kid=f"forged-{i}", key=forger)), 401, "invalid_token")
    elapsed = time.monotonic() - started
    # The refetch floor allows one JWKS fetch per AUTH0_JWKS_MIN_REFRESH_S, plus the first: bounded by the
    # time the 25 requests actually took (a busy machine takes longer), never by how fast they ran.
    allowed = 1 + int(elapsed / MIN_REFRESH_S) + 1
    assert auth0.jwks_fetches - before <= min(allowed, 25), (auth0.jwks_fetches - before, elapsed)


def test_key_rotation_without_restart_and_rotated_out_key(server: LiveServer, auth0: FakeAuth0) -> None:
    old_token = auth0.mint(sub="auth0|rotator")
    _assert_clean(_get(server, "/api/me", old_token), 200)
    auth0.rotate(retire_old=True)
    time.sleep(0.6)  # past AUTH0_JWKS_MIN_REFRESH_S, as a real rotation would be
    new_token = auth0.mint(sub="auth0|rotator")
    _assert_clean(_get(server, "/api/me", new_token), 200)  # unknown kid -> refetch -> accepted
    _assert_clean(_get(server, "/api/me", old_token), 401, "invalid_token")  # the retired key is gone


def test_userinfo_proxy_cache_timeout_and_upstream_error(server: LiveServer, auth0: FakeAuth0) -> None:
    auth0.add_user("auth0|info", "info@example.test", name="Info Person")
    token = auth0.mint(sub="auth0|info")
    body = _assert_clean(_get(server, "/api/userinfo", token), 200)
    assert body["email"] == "info@example.test" and body["sub"] == "auth0|info"
    auth0.fail_next(500, path="/userinfo")
    cached = _assert_clean(_get(server, "/api/userinfo", token), 200)  # served from the short cache
    assert cached == body
    auth0.reset()

    slow_token = auth0.mint(sub="auth0|slow")
    auth0.hang_next(3, path="/userinfo")
    _assert_clean(_get(server, "/api/userinfo", slow_token), 504, "provider_timeout")
    failing_token = auth0.mint(sub="auth0|failing")
    auth0.fail_next(503, path="/userinfo", message="upstream sk-secretvalue123 exploded")
    failed = _assert_clean(_get(server, "/api/userinfo", failing_token), 502, "provider_error")
    assert "sk-secretvalue123" not in failed["message"]


def _create_key(server: LiveServer, auth0: FakeAuth0, sub: str) -> tuple[str, str]:
    response = httpx.post(
        server.url + "/api/keys",
        json={"name": "cli"},
        headers={"Authorization": f"Bearer {auth0.mint(sub=sub)}"},
        timeout=10,
    )
    body = _assert_clean(response, 201)
    return body["id"], body["key"]


def test_revoked_api_key(server: LiveServer, auth0: FakeAuth0) -> None:
    key_id, key = _create_key(server, auth0, "auth0|keyholder")
    _assert_clean(_get(server, "/api/me", **{"x-api-key": key}), 200)
    deleted = httpx.delete(f"{server.url}/api/keys/{key_id}", headers={"x-api-key": key}, timeout=10)
    assert deleted.status_code == 204
    _assert_clean(_get(server, "/api/me", **{"x-api-key": key}), 401, "invalid_token")


def test_pin_brute_force_reaches_lockout(server: LiveServer, auth0: FakeAuth0) -> None:
    # A fresh e-mail per run: lockout counters outlive a test in Redis for PIN_LOCKOUT_SECONDS.
    email = f"pin-battery-{secrets.token_hex(4)}@example.test"
    token = auth0.mint(sub=f"auth0|pin-{email}", claims={"email": email, "email_verified": True})
    me = _assert_clean(_get(server, "/api/me", token), 200)
    assert me["user"]["email"] == email
    assert (
        httpx.put(
            server.url + "/api/me/pin", json={"pin": "90817"}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).status_code
        == 204
    )
    statuses = []
    for guess in range(10000, 10006):
        response = httpx.post(server.url + "/api/auth/pin", json={"email": email, "pin": str(guess)}, timeout=10)
        statuses.append(response.status_code)
        assert "Traceback" not in response.text
    assert statuses == [401, 401, 401, 401, 429, 429]
    locked = httpx.post(server.url + "/api/auth/pin", json={"email": email, "pin": "90817"}, timeout=10)
    body = _assert_clean(locked, 429, "locked_out")
    assert body["retry_after"] > 0 and locked.headers["Retry-After"]


def test_forged_twilio_signatures(server: LiveServer) -> None:
    params = {"CallSid": "CA" + "3" * 32, "CallStatus": "ringing", "SequenceNumber": "0"}
    forged = httpx.post(
        server.url + "/twilio/status", data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, timeout=10
    )
    _assert_clean(forged, 403, "invalid_signature")
    http_signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://voice.example.com/twilio/status", params)
    wrong_scheme = httpx.post(
        server.url + "/twilio/status", data=params, headers={"X-Twilio-Signature": http_signature}, timeout=10
    )
    _assert_clean(wrong_scheme, 403, "invalid_signature")
    good = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + "/twilio/status", params)
    accepted = httpx.post(server.url + "/twilio/status", data=params, headers={"X-Twilio-Signature": good}, timeout=10)
    assert accepted.status_code == 204


async def test_socketio_handshake_uses_the_same_verifier(server: LiveServer, auth0: FakeAuth0) -> None:
    bad = socketio.AsyncClient(reconnection=False)
    errors: list = []
    bad.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(server.url, auth={"token": auth0.mint_unsigned()}, transports=["websocket"], wait_timeout=5)
    assert errors == [{"message": "Invalid or expired authentication token"}]

    good = socketio.AsyncClient(reconnection=False)
    await good.connect(
        server.url, auth={"token": auth0.mint(sub="auth0|socket")}, transports=["websocket"], wait_timeout=5
    )
    try:
        reply = await good.call("ping_server", {}, timeout=5)
        assert reply["user_id"].startswith("usr_")
    finally:
        await good.disconnect()

    # An API key works in the handshake too, and a revoked one is refused like a bad token.
    key_id, key = await asyncio.to_thread(_create_key, server, auth0, "auth0|socket")
    with_key = socketio.AsyncClient(reconnection=False)
    await with_key.connect(server.url, auth={"token": key}, transports=["websocket"], wait_timeout=5)
    try:
        assert (await with_key.call("ping_server", {}, timeout=5))["user_id"] == reply["user_id"]
    finally:
        await with_key.disconnect()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.delete(f"/api/keys/{key_id}", headers={"x-api-key": key})).status_code == 204
    revoked = socketio.AsyncClient(reconnection=False)
    revoked_errors: list = []
    revoked.on("connect_error", revoked_errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await revoked.connect(server.url, auth={"token": key}, transports=["websocket"], wait_timeout=5)
    assert revoked_errors == [{"message": "Invalid or expired authentication token"}]
