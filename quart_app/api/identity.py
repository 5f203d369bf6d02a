"""Identity routes: who am I, Auth0 userinfo, PIN set and sign-in, and the legacy /mobile-auth."""

from __future__ import annotations

import asyncio
import logging

from quart import Blueprint, jsonify
from quart_schema import validate_request, validate_response

from ..auth import pins
from ..auth.guards import client_address, current_principal, require_auth
from ..auth.userinfo_cache import UserinfoCache
from ..db import users
from ..errors import APIError, ProviderUnconfigured
from ..runtime import runtime
from .schemas import MeOut, MobileAuthIn, PinIn, PinSignInIn, SessionOut

log = logging.getLogger(__name__)

blueprint = Blueprint("identity", __name__)
_userinfo_cache = UserinfoCache()


@blueprint.get("/api/me")
@validate_response(MeOut)
@require_auth()
async def me():  # type: ignore[no-untyped-def]
    """The caller's local user record, plus the token's claims when signed in through Auth0."""
    principal = current_principal()
    user = await users.get_user(runtime().database(), principal.user.id) or principal.user
    return MeOut(user=user.public(), auth=principal.method, is_admin=principal.is_admin, claims=principal.claims)


@blueprint.get("/api/userinfo")
@require_auth()
async def userinfo():  # type: ignore[no-untyped-def]
    """Auth0's /userinfo for the caller's access token, cached briefly."""
    principal = current_principal()
    rt = runtime()
    if rt.auth0 is None:
        raise ProviderUnconfigured("auth0", rt.settings.providers()["auth0"].missing)
    if principal.method != "auth0" or principal.token is None:
        raise APIError(400, "auth0_token_required", "/api/userinfo needs an Auth0 access token, not an API key.")
    cached = _userinfo_cache.get(principal.token)
    if cached is None:
        cached = await rt.auth0.userinfo(principal.token)
        _userinfo_cache.put(principal.token, cached)
    return jsonify(cached)


@blueprint.get("/api/protected/test")
@require_auth()
async def protected_test():  # type: ignore[no-untyped-def]
    """A cheap authenticated round trip for clients checking their credentials."""
    principal = current_principal()
    return jsonify({"message": "authenticated", "user_id": principal.user.id, "auth": principal.method})


@blueprint.put("/api/me/pin")
@validate_request(PinIn)
@require_auth()
async def set_pin(data: PinIn):  # type: ignore[no-untyped-def]
    """Set or replace the caller's voice-assistant PIN (4-8 digits, stored as a scrypt hash)."""
    try:
        pins.validate_pin(data.pin)
    except ValueError as exc:
        raise APIError(400, "invalid_pin", str(exc), extra={"field": "pin"}) from None
    digest = await asyncio.to_thread(pins.hash_pin, data.pin)
    await users.set_pin_hash(runtime().database(), current_principal().user.id, digest)
    return "", 204


@blueprint.delete("/api/me/pin")
@require_auth()
async def clear_pin():  # type: ignore[no-untyped-def]
    """Remove the caller's PIN; PIN sign-in stops working for this user."""
    await users.set_pin_hash(runtime().database(), current_principal().user.id, None)
    return "", 204


@blueprint.post("/api/auth/pin")
@validate_request(PinSignInIn)
@validate_response(SessionOut)
async def pin_sign_in(data: PinSignInIn):  # type: ignore[no-untyped-def]
    """Exchange e-mail + PIN for a session token. Failures never say whether the user exists."""
    rt = runtime()
    assert rt.pin_lockout is not None and rt.sessions is not None
    address = client_address()
    state = await rt.pin_lockout.state(data.email, address)
    if state.locked:
        raise _locked(state.retry_after)
    db = rt.database()
    user = await users.get_user_by_email(db, data.email.strip())
    stored = user.pin_hash if user is not None else None
    # Verify against a dummy hash for unknown users so timing does not reveal who exists.
    ok = await asyncio.to_thread(_check_pin, data.pin, stored)
    if not ok or user is None or stored is None:
        state = await rt.pin_lockout.record_failure(data.email, address)
        if state.locked:
            raise _locked(state.retry_after)
        raise APIError(401, "invalid_credentials", "E-mail or PIN is incorrect.")
    await rt.pin_lockout.reset(data.email, address)
    return SessionOut(token=rt.sessions.issue(user.id), expires_in=rt.sessions.ttl_s, user=user.public())


@blueprint.post("/mobile-auth")
@validate_request(MobileAuthIn)
async def mobile_auth(data: MobileAuthIn):  # type: ignore[no-untyped-def]
    """Legacy session sign-in by e-mail alone. Gone unless ALLOW_INSECURE_SESSION_AUTH=true."""
    rt = runtime()
    if not rt.settings.allow_insecure_session_auth:
        raise APIError(
            410,
            "gone",
            "/mobile-auth signed users in without a secret and has been removed. Use an Auth0 access token, "
            "an API key (x-api-key) or PIN sign-in (POST /api/auth/pin).",
        )
    assert rt.sessions is not None
    log.warning("SECURITY WARNING: insecure /mobile-auth sign-in used from %s", client_address())
    user = await users.get_user_by_email(rt.database(), data.email.strip())
    if user is None:
        raise APIError(401, "invalid_credentials", "Unknown user.")
    return jsonify({"token": rt.sessions.issue(user.id), "token_type": "Bearer", "expires_in": rt.sessions.ttl_s,
                    "user": user.public(), "warning": "insecure session auth is enabled on this server"})


def _locked(retry_after: float) -> APIError:
    seconds = max(1, int(retry_after + 0.999))
    return APIError(
        429,
        "locked_out",
        "Too many failed attempts. Try again later.",
        headers={"Retry-After": str(seconds)},
        extra={"retry_after": seconds},
    )


_DUMMY: list[str] = []


def _check_pin(pin: str, stored: str | None) -> bool:
    """Runs in a worker thread: scrypt takes tens of milliseconds and must not block the event loop."""
    if stored is None:
        if not _DUMMY:
            _DUMMY.append(pins.hash_pin("00000000"))
        pins.verify_pin(pin, _DUMMY[0])
        return False
    return pins.verify_pin(pin, stored)
