"""FakeAuth0: a tenant's JWKS, token endpoint and /userinfo, with a `mint()` helper for tests.

Tokens carry `iss = https://{domain}/` (the real tenant name the service is configured with) while the
fake itself listens on `fake.base_url`; the service reaches it through AUTH0_BASE_URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jose import JWTError, jwt

from fakes.base import FakeService

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.I)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_private_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    retired: bool = False

    @property
    def pem(self) -> bytes:
        return private_pem(self.private_key)

    def jwk(self) -> dict[str, Any]:
        """The public key as Auth0 publishes it (with the self-signed x5c chain and x5t thumbprint)."""
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(der).decode()],
            "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),
        }


def _self_signed(key: rsa.RSAPrivateKey, domain: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


class FakeAuth0(FakeService):
    """State of a fake Auth0 tenant.

    `mint(...)` signs tokens; `rotate()` / `retire(kid)` change the published keys; `jwks_fetches` counts
    JWKS downloads; `add_user(...)` / `add_client(...)` feed /userinfo and /oauth/token.
    """

    name = "auth0"

    def __init__(
        self,
        domain: str = "fake-tenant.auth0.local",
        audience: str = "https://api.voice.local",
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        key_size: int = 2048,
    ) -> None:
        super().__init__()
        self.domain = domain
        self.audience = audience
        self.key_size = key_size
        self.jwks_fetches = 0
        self._state_lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self.clients: dict[str, str] = {client_id: client_secret}
        self.client_id, self.client_secret = client_id, client_secret
        self.users: dict[str, dict[str, Any]] = {}
        self.passwords: dict[str, str] = {}
        self.rotate()
        self.add_user("auth0|fake-user-1", "user@example.com", password="fake-password", name="Fake User")

    @property
    def issuer(self) -> str:
        return f"https://{self.domain}/"

    # ----- keys -------------------------------------------------------------------------------

    def rotate(self, *, retire_old: bool = False) -> str:
        """Publish a new signing key (used by `mint` from now on); returns its kid."""
        key = new_private_key(self.key_size)
        signing = SigningKey(f"fake-{uuid.uuid4().hex[:16]}", key, _self_signed(key, self.domain))
        with self._state_lock:
            if retire_old:
                for old in self._keys:
                    old.retired = True
            self._keys.append(signing)
        return signing.kid

    def retire(self, kid: str) -> None:
        """Stop publishing `kid` in the JWKS (tokens it signed no longer verify)."""
        with self._state_lock:
            self.key(kid).retired = True

    def key(self, kid: str) -> SigningKey:
        """The tenant key named `kid`, published or retired; KeyError for kids it never had."""
        for signing in self._keys:
            if signing.kid == kid:
                return signing
        raise KeyError(f"no tenant key with kid {kid!r}; pass key= to sign with a foreign key")

    @property
    def current_kid(self) -> str:
        with self._state_lock:
            return [k for k in self._keys if not k.retired][-1].kid

    @property
    def kids(self) -> list[str]:
        """Kids currently published in the JWKS."""
        with self._state_lock:
            return [k.kid for k in self._keys if not k.retired]

    def jwks(self) -> dict[str, Any]:
        with self._state_lock:
            return {"keys": [k.jwk() for k in self._keys if not k.retired]}

    # ----- tokens -----------------------------------------------------------------------------

    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        sub: str = "auth0|fake-user-1",
        kid: str | None = None,
        alg: str = "RS256",
        key: Any = None,
        expires_in: int = 3600,
        iat: int | None = None,
        nbf: int | None = None,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A signed JWT like Auth0 issues; claims override the defaults and a None value removes a claim.

        `key` signs instead of the tenant key (a PEM or secret, e.g. for HS256 or unknown-key tests) while
        `kid` still names a tenant key unless given.
        """
        now = int(time.time()) if iat is None else iat
        body: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": sub,
            "aud": audience or self.audience,
            "iat": now,
            "exp": now + expires_in,
        }
        if nbf is not None:
            body["nbf"] = nbf
        body.update(claims or {})
        body = {k: v for k, v in body.items() if v is not None}
        kid = kid or self.current_kid
        if key is None:
            with self._state_lock:
                key = self.key(kid).pem
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def mint_unsigned(self, claims: dict[str, Any] | None = None, *, sub: str = "auth0|fake-user-1") -> str:
        """An `alg: none` token with no signature, for testing that verifiers refuse it."""
        now = int(time.time())
        body = {"iss": self.issuer, "sub": sub, "aud": self.audience, "iat": now, "exp": now + 3600, **(claims or {})}

        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': self.current_kid})}.{part(body)}."

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a token this tenant signed with a published key; raises JWTError otherwise."""
        kid = jwt.get_unverified_header(token).get("kid")
        jwks = self.jwks()
        match = [k for k in jwks["keys"] if k["kid"] == kid]
        if not match:
            raise JWTError("unknown kid")
        return jwt.decode(token, match[0], algorithms=["RS256"], issuer=self.issuer, options={"verify_aud": False})

    # ----- users and clients ------------------------------------------------------------------

    def add_user(
        self, sub: str, email: str, *, password: str | None = None, name: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Register a profile for /userinfo (and the password grant when `password` is given)."""
        profile = {
            "sub": sub,
            "email": email,
            "email_verified": True,
            "name": name or email,
            "nickname": email.split("@")[0],
            "picture": f"https://s.gravatar.com/avatar/{hashlib.md5(email.encode()).hexdigest()}?s=480",
            "updated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            **extra,
        }
        with self._state_lock:
            self.users[sub] = profile
            if password is not None:
                self.passwords[email] = password
        return profile

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self._state_lock:
            self.clients[client_id] = client_secret

    def profile(self, sub: str) -> dict[str, Any]:
        with self._state_lock:
            known = self.users.get(sub)
        if known is not None:
            return dict(known)
        nickname = re.sub(r"[^a-z0-9]+", "-", sub.split("|")[-1].lower()).strip("-") or "user"
        return {
            "sub": sub,
            "email": f"{nickname}@example.com",
            "email_verified": True,
            "name": nickname,
            "nickname": nickname,
            "picture": "https://s.gravatar.com/avatar/0?s=480",
            "updated_at": "2024-01-01T00:00:00.000Z",
        }

    # ----- HTTP -------------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/.well-known/jwks.json", self.handle_jwks),
            web.get("/.well-known/openid-configuration", self.handle_discovery),
            web.get("/userinfo", self.handle_userinfo),
            web.post("/oauth/token", self.handle_token),
        ]

    def error_response(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        error = {401: "invalid_token", 403: "access_denied", 429: "too_many_requests"}.get(status, "server_error")
        body = {"error": error, "error_description": message or "Injected failure"}
        return web.json_response(body, status=status, headers=headers)

    async def handle_jwks(self, request: web.Request) -> web.Response:
        with self._state_lock:
            self.jwks_fetches += 1
        return web.json_response(self.jwks(), headers={"Cache-Control": "public, max-age=15"})

    async def handle_discovery(self, request: web.Request) -> web.Response:
        origin = str(request.url.origin())
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{origin}/authorize",
                "token_endpoint": f"{origin}/oauth/token",
                "userinfo_endpoint": f"{origin}/userinfo",
                "jwks_uri": f"{origin}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["HS256", "RS256"],
                "response_types_supported": ["code", "token", "id_token"],
                "subject_types_supported": ["public"],
            }
        )

    async def handle_userinfo(self, request: web.Request) -> web.Response:
        match = _BEARER.match(request.headers.get("Authorization", ""))
        if not match:
            return self._unauthorized("Bearer token is missing")
        try:
            claims = self.verify(match.group(1))
        except JWTError as exc:
            return self._unauthorized(f"invalid token: {exc}")
        return web.json_response(self.profile(claims["sub"]))

    def _unauthorized(self, description: str) -> web.Response:
        # Auth0 puts the OAuth error in WWW-Authenticate (RFC 6750); the body repeats it as JSON.
        challenge = f'Bearer realm="{self.domain}", error="invalid_token", error_description="{description}"'
        return web.json_response(
            {"error": "invalid_token", "error_description": description},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    async def handle_token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            try:
                form = dict(await request.json())
            except (ValueError, TypeError):
                return self._denied(400, "invalid_request", "Invalid JSON body")
        else:
            form = dict(await request.post())
        self.record(request).json = {k: ("***" if "secret" in k or k == "password" else v) for k, v in form.items()}
        grant = form.get("grant_type")
        audience = form.get("audience") or self.audience
        if audience != self.audience:
            return self._denied(403, "access_denied", f"Service not enabled within domain: {audience}")
        client_id = form.get("client_id", "")
        with self._state_lock:
            secret = self.clients.get(client_id)
        if grant == "client_credentials":
            if secret is None or form.get("client_secret") != secret:
                return self._denied(403, "access_denied", "Unauthorized")
            token = self.mint(
                {"azp": client_id, "gty": "client-credentials", "scope": form.get("scope")},
                sub=f"{client_id}@clients",
                audience=audience,
            )
            return self._token_response(token, form.get("scope"))
        if grant in ("password", "http://auth0.com/oauth/grant-type/password-realm"):
            if secret is None:
                return self._denied(403, "access_denied", "Unauthorized")
            username, password = form.get("username", ""), form.get("password", "")
            with self._state_lock:
                ok = self.passwords.get(username) == password and password != ""
                sub = next((s for s, p in self.users.items() if p["email"] == username), None)
            if not ok or sub is None:
                return self._denied(403, "invalid_grant", "Wrong email or password.")
            scope = form.get("scope") or "openid profile email"
            token = self.mint({"azp": client_id, "scope": scope}, sub=sub, audience=audience)
            id_token = self.mint(self.profile(sub), sub=sub, audience=client_id) if "openid" in scope else None
            return self._token_response(token, scope, id_token)
        return self._denied(403, "unauthorized_client", f"Grant type '{grant}' not allowed for the client.")

    def _denied(self, status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": error, "error_description": description}, status=status)

    def _token_response(self, token: str, scope: str | None, id_token: str | None = None) -> web.Response:
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        if scope:
            body["scope"] = scope
        if id_token:
            body["id_token"] = id_token
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
