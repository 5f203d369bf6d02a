"""Auth0 access-token verification: RS256 only, JWKS cached, unknown kids refetched at a bounded rate."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from jose import jwk, jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from ..errors import APIError
from ..providers.auth0 import Auth0Client

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
MAX_TOKEN_BYTES = 8192
# python-jose checks `aud` (and `iss`) only when the claim is present: a token without one would pass.
# Requiring them turns a missing claim into a refusal.
REQUIRED = ("aud", "iss", "exp", "iat", "sub")
REQUIRED_CLAIMS = {f"require_{claim}": True for claim in REQUIRED}


class TokenError(Exception):
    """The token is not acceptable; `description` is safe to show the caller."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class Auth0Verifier:
    def __init__(
        self,
        client: Auth0Client,
        issuer: str,
        audience: str,
        *,
        leeway_s: int = 30,
        jwks_ttl_s: float = 600.0,
        min_refetch_s: float = 10.0,
    ) -> None:
        self.client = client
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.jwks_ttl_s = jwks_ttl_s
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def verify(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token is too large")
        try:
            header = jwt.get_unverified_header(token)
        except JWTError:
            raise TokenError("token is malformed") from None
        if header.get("alg") not in ALGORITHMS:
            # Rejects alg=none and HS256-with-the-public-key before any key is even looked up.
            raise TokenError("token algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        try:
            unverified = jwt.get_unverified_claims(token)
        except JWTError:
            raise TokenError("token is malformed") from None
        missing = [claim for claim in REQUIRED if claim not in unverified]
        if missing:
            # Also enforced by decode() below; checked first only to name the claim (jose says "signature").
            raise TokenError(f"token has no {', '.join(missing)} claim")
        key = await self._key(kid)
        if key is None:
            raise TokenError("token signing key is unknown")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"leeway": self.leeway_s, **REQUIRED_CLAIMS},
            )
        except ExpiredSignatureError:
            raise TokenError("token has expired") from None
        except JWTClaimsError as exc:
            raise TokenError(f"token claims are invalid: {exc}") from None
        except JWTError:
            raise TokenError("token signature is invalid") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise TokenError("token subject is invalid")
        iat = claims.get("iat")
        if isinstance(iat, (int, float)) and iat > time.time() + self.leeway_s:
            raise TokenError("token was issued in the future")
        return dict(claims)

    async def _key(self, kid: str) -> Any | None:
        now = time.monotonic()
        if kid in self._keys and now - self._fetched_at < self.jwks_ttl_s:
            return self._keys[kid]
        async with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at >= self.jwks_ttl_s
            # An unknown kid may mean rotation, or a forgery: refetch, but never more often than min_refetch_s.
            if (kid not in self._keys or stale) and now - self._fetched_at >= self.min_refetch_s:
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            document = await self.client.jwks()
        except APIError as exc:
            self._fetched_at = time.monotonic()  # back off from a failing Auth0 too
            if not self._keys:
                raise APIError(503, "auth_unavailable", "Cannot fetch signing keys from Auth0 right now.") from exc
            log.warning("JWKS refresh failed, keeping %d cached keys: %s", len(self._keys), exc.message)
            return
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
                continue
            try:
                keys[entry["kid"]] = jwk.construct(entry, "RS256")
            except Exception:  # a malformed key must not hide the others
                log.warning("ignoring malformed JWKS key %s", entry.get("kid"))
        self._keys = keys
        self._fetched_at = time.monotonic()
        self.fetches += 1
