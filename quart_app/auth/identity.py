"""Who is calling: one Authenticator for REST headers, Socket.IO handshakes and WebSocket upgrades.

Credentials are told apart by shape: `usr_...` is an API key, `vst_...` a PIN session token, anything
else is treated as an Auth0 access token (a JWT).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from ..db import api_keys, users
from ..db.handle import DatabaseHandle
from ..db.users import User
from ..errors import APIError, ProviderUnconfigured
from ..settings import Settings
from .jwt_verifier import Auth0Verifier, TokenError
from .sessions import PREFIX as SESSION_PREFIX
from .sessions import SessionTokens

log = logging.getLogger(__name__)

Method = Literal["auth0", "api_key", "session"]
REALM = "voice-backend"
# An API key's `last_used_at` is written at most this often per key and instance: a write per request was the
# largest cost of an authenticated request on SQLite (docs/performance.md), for a figure people read in minutes.
TOUCH_EVERY_S = 60.0
TOUCHED_MAX = 10_000  # keys remembered before the memory of recent touches starts over


@dataclass(frozen=True)
class Principal:
    user: User
    method: Method
    is_admin: bool
    claims: dict[str, Any] | None = None
    api_key_id: str | None = None
    token: str | None = None

    @property
    def rate_subjects(self) -> tuple[str, ...]:
        """What a request is counted against: its user always, and its API key too when it used one, so
        that minting more keys does not multiply a user's budget."""
        user = f"user:{self.user.id}"
        return (f"key:{self.api_key_id}", user) if self.api_key_id else (user,)


class AuthError(APIError):
    """401 with an RFC 6750 WWW-Authenticate header."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        if missing:
            header = f'Bearer realm="{REALM}"'
            code = "unauthorized"
        else:
            safe = message.replace('"', "'")
            header = f'Bearer realm="{REALM}", error="invalid_token", error_description="{safe}"'
            code = "invalid_token"
        super().__init__(401, code, message, headers={"WWW-Authenticate": header})


class HeaderLookup(Protocol):
    """What is read from request headers: a Mapping, or Quart/werkzeug's case-insensitive Headers."""

    @overload
    def get(self, key: str) -> str | None: ...

    @overload
    def get(self, key: str, default: str) -> str: ...


def credential_from_headers(headers: HeaderLookup) -> str | None:
    api_key = headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        database: DatabaseHandle,
        verifier: Auth0Verifier | None,
        sessions: SessionTokens,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.database = database
        self.verifier = verifier
        self.sessions = sessions
        self.clock = clock
        self._touched: dict[str, float] = {}  # API key id -> when this instance last wrote its last_used_at

    async def authenticate(self, credential: str | None) -> Principal:
        if not credential:
            raise AuthError("Missing credentials: send Authorization: Bearer <token> or x-api-key", missing=True)
        if credential.startswith("usr_"):
            return await self._api_key(credential)
        if credential.startswith(SESSION_PREFIX):
            return await self._session(credential)
        return await self._auth0(credential)

    async def _api_key(self, key: str) -> Principal:
        if len(key) > 256:
            raise AuthError("Invalid API key")
        record = await api_keys.find_active_key(self.database.get(), key)
        if record is None:
            raise AuthError("Invalid or revoked API key")
        user = await users.get_user(self.database.get(), record.user_id)
        if user is None:
            raise AuthError("Invalid or revoked API key")
        if self._touch_due(record.id):
            await api_keys.touch(self.database.get(), record.id)
        return Principal(user=user, method="api_key", is_admin=user.is_admin, api_key_id=record.id)

    def _touch_due(self, key_id: str) -> bool:
        now = self.clock()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_EVERY_S:
            return False
        if len(self._touched) >= TOUCHED_MAX:
            self._touched.clear()
        self._touched[key_id] = now
        return True

    async def _session(self, token: str) -> Principal:
        session = self.sessions.read(token)
        user = await users.get_user(self.database.get(), session.user_id) if session else None
        # A PIN change or removal ends every session issued under the previous PIN.
        if user is None or session is None or not self.sessions.current(session, user.pin_hash):
            raise AuthError("Invalid or expired session token")
        return Principal(user=user, method="session", is_admin=user.is_admin)

    async def _auth0(self, token: str) -> Principal:
        if self.verifier is None:
            raise ProviderUnconfigured("auth0", self.settings.providers()["auth0"].missing)
        try:
            claims = await self.verifier.verify(token)
        except TokenError as exc:
            raise AuthError(f"Invalid or expired authentication token: {exc.description}") from None
        user = await self._user_for_claims(claims)
        admin = user.is_admin or self._claims_grant_admin(claims)
        return Principal(user=user, method="auth0", is_admin=admin, claims=claims, token=token)

    async def _user_for_claims(self, claims: dict[str, Any]) -> User:
        sub = str(claims["sub"])
        db = self.database.get()
        user = await users.get_user_by_sub(db, sub)
        if user is not None:
            return user
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        if claims.get("email_verified") is not True:
            # An unverified address proves nothing: storing it would squat it (PIN sign-in, init_db promotion).
            email = None
        if email:
            existing = await users.get_user_by_email(db, email)
            if existing is not None:
                # A verified address links this identity to the account holding it, unless another Auth0
                # identity already owns that account; then the new user gets no e-mail (it is unique).
                linked = await users.link_auth0_sub(db, existing.id, sub) if existing.auth0_sub is None else None
                if linked is not None:
                    log.info("linked Auth0 identity %s to user %s by verified e-mail", sub, linked.id)
                    return linked
                email = None
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        try:
            return await users.create_user(db, auth0_sub=sub, email=email, name=name)
        except Exception:
            # Two first requests raced to create (or link) the same user; the other one won.
            existing = await users.get_user_by_sub(db, sub)
            if existing is None:
                raise
            return existing

    def _claims_grant_admin(self, claims: dict[str, Any]) -> bool:
        permissions = claims.get("permissions")
        if isinstance(permissions, list) and self.settings.auth0_admin_permission in permissions:
            return True
        if self.settings.auth0_role_claim:
            roles = claims.get(self.settings.auth0_role_claim)
            if isinstance(roles, str):
                roles = [roles]
            if isinstance(roles, list) and "admin" in roles:
                return True
        return False
