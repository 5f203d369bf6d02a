"""Identity routes: who am I, Auth0 userinfo, PIN set and sign-in, and the legacy /mobile-auth."""

from __future__ import annotations

import asyncio
import logging

from quart import Blueprint, Response, jsonify
from quart_schema import validate_request, validate_response

from ..auth import pins
from ..auth.userinfo_cache import UserinfoCache
from ..db import users
from ..errors import APIError, ProviderUnconfigured
from ..web.guards import client_address, current_principal, require_auth
from ..web.state import resources
from .schemas import MeOut, MobileAuthIn, PinIn, PinSignInIn, SessionOut, UserOut

log = logging.getLogger(__name__)

blueprint = Blueprint("identity", __name__)
_userinfo_cache = UserinfoCache()


@blueprint.get("/api/me")
@validate_response(MeOut)
@require_auth()
async def me() -> MeOut:
    """The caller's local user record, plus the token's claims when signed in through Auth0."""
    principal = current_principal()
    user = await users.get_user(resources().db(), principal.user.id) or principal.user
    return MeOut(
        user=UserOut(**user.public()), auth=principal.method, is_admin=principal.is_admin, claims=principal.claims
    )


@blueprint.get("/api/userinfo")
@require_auth()
async def userinfo() -> Response:
    """Auth0's /userinfo for the caller's access token, cached briefly."""
    principal = current_principal()
    rs = resources()
    if rs.auth0 is None:
        raise ProviderUnconfigured("auth0", rs.settings.providers()["auth0"].missing)
    if principal.method != "auth0" or principal.token is None:
        raise APIError(400, "auth0_token_required", "/api/userinfo needs an Auth0 access token, not an API key.")
    cached = _userinfo_cache.get(principal.token)
    if cached is None:
        cached = await rs.auth0.userinfo(principal.token)
        _userinfo_cache.put(principal.token, cached)
    return jsonify(cached)


@blueprint.get("/api/protected/test")
@require_auth()
async def protected_test() -> Response:
    """A cheap authenticated round trip for clients checking their credentials."""
    principal = current_principal()
    return jsonify({"message": "authenticated", "user_id": principal.user.id, "auth": principal.method})


@blueprint.put("/api/me/pin")
@validate_request(PinIn)
@require_auth()
async def set_pin(data: PinIn) -> tuple[str, int]:
    """Set or replace the caller's voice-assistant PIN (4-8 digits, stored as a scrypt hash)."""
    try:
        pins.validate_pin(data.pin)
    except ValueError as exc:
        raise APIError(400, "invalid_pin", str(exc), extra={"field": "pin"}) from None
    digest = await asyncio.to_thread(pins.hash_pin, data.pin)
    await users.set_pin_hash(resources().db(), current_principal().user.id, digest)
    return "", 204


@blueprint.delete("/api/me/pin")
@require_auth()
async def clear_pin() -> tuple[str, int]:
    """Remove the caller's PIN; PIN sign-in stops working for this user."""
    await users.set_pin_hash(resources().db(), current_principal().user.id, None)
    return "", 204


@blueprint.post("/api/auth/pin")
@validate_request(PinSignInIn)
@validate_response(SessionOut)
async def pin_sign_in(data: PinSignInIn) -> SessionOut:
    """Exchange e-mail + PIN for a session token. Failures never say whether the user exists."""
    signed_in = await resources().pin_signin.sign_in(data.email, data.pin, client_address())
    return SessionOut(token=signed_in.token, expires_in=signed_in.expires_in, user=UserOut(**signed_in.user.public()))


@blueprint.post("/mobile-auth")
@validate_request(MobileAuthIn)
async def mobile_auth(data: MobileAuthIn) -> Response:
    """Legacy session sign-in by e-mail alone. Gone unless ALLOW_INSECURE_SESSION_AUTH=true."""
    rs = resources()
    if not rs.settings.allow_insecure_session_auth:
        raise APIError(
            410,
            "gone",
            "/mobile-auth signed users in without a secret and has been removed. Use an Auth0 access token, "
            "an API key (x-api-key) or PIN sign-in (POST /api/auth/pin).",
        )
    log.warning("SECURITY WARNING: insecure /mobile-auth sign-in used from %s", client_address())
    user = await users.get_user_by_email(rs.db(), data.email.strip())
    if user is None:
        raise APIError(401, "invalid_credentials", "Unknown user.")
    return jsonify(
        {
            "token": rs.sessions.issue(user.id),
            "token_type": "Bearer",
            "expires_in": rs.sessions.ttl_s,
            "user": user.public(),
            "warning": "insecure session auth is enabled on this server",
        }
    )
