"""Identity routes: who am I, Auth0 userinfo, PIN set and sign-in, and the legacy /mobile-auth."""

from __future__ import annotations

import logging

from pydantic import Field, ValidationError
from quart import Blueprint, Response, jsonify, request
from quart_schema import document_request, validate_request, validate_response
from werkzeug.exceptions import BadRequest

from ..auth import pins
from ..auth.identity import Principal
from ..auth.userinfo_cache import UserinfoCache
from ..db import users
from ..errors import APIError, ProviderUnconfigured
from ..web.guards import client_address, current_principal, require_auth
from ..web.state import resources
from .schemas import MeOut, MobileAuthIn, PinIn, PinSignInIn, SessionOut, UserOut

log = logging.getLogger(__name__)

blueprint = Blueprint("identity", __name__)
_userinfo_cache = UserinfoCache()


class PinChangeIn(PinIn):
    current_pin: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The PIN set now. Required to replace a PIN (always from a PIN session); not for a first PIN.",
    )


def stronger_auth_required(action: str) -> APIError:
    return APIError(
        403,
        "stronger_auth_required",
        f"{action} needs an Auth0 access token or an API key, not a PIN session.",
    )


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
@validate_request(PinChangeIn)
@require_auth()
async def set_pin(data: PinChangeIn) -> tuple[str, int]:
    """Set or replace the caller's voice-assistant PIN (4-8 digits, stored as a scrypt hash).

    Replacing a PIN needs `current_pin` (checked like a sign-in: wrong guesses count towards the lockout);
    a PIN session must always send it. Every session issued under the old PIN ends, this one included.
    """
    principal = current_principal()
    try:
        pins.validate_pin(data.pin)
    except ValueError as exc:
        raise APIError(400, "invalid_pin", str(exc), extra={"field": "pin"}) from None
    rs = resources()
    user = principal.user
    if principal.method == "session" and user.pin_hash is None:
        raise stronger_auth_required("Setting a first PIN")  # only a legacy /mobile-auth session has no PIN
    if user.pin_hash is not None:
        if not data.current_pin:
            raise APIError(
                403, "current_pin_required", "Send current_pin to replace the PIN.", extra={"field": "current_pin"}
            )
        await rs.pin_signin.verify_current(user, data.current_pin, client_address())
    digest = await rs.pin_signin.hash_pin(data.pin)
    if not await users.replace_pin_hash(rs.db(), user.id, user.pin_hash, digest):
        raise APIError(409, "conflict", "The PIN was changed by another request meanwhile; nothing changed.")
    log.info("PIN %s for user %s by %s", "replaced" if user.pin_hash else "set", user.id, principal.method)
    return "", 204


@blueprint.delete("/api/me/pin")
@require_auth()
async def clear_pin() -> tuple[str, int]:
    """Remove the caller's PIN: PIN sign-in stops working for this user and every PIN session ends.

    Needs an Auth0 token or an API key (this is also how a forgotten PIN is reset), not a PIN session.
    """
    principal = current_principal()
    refuse_pin_session(principal, "Removing the PIN")
    await users.set_pin_hash(resources().db(), principal.user.id, None)
    log.info("PIN cleared for user %s by %s", principal.user.id, principal.method)
    return "", 204


def refuse_pin_session(principal: Principal, action: str) -> None:
    if principal.method == "session":
        raise stronger_auth_required(action)


@blueprint.post("/api/auth/pin")
@validate_request(PinSignInIn)
@validate_response(SessionOut)
async def pin_sign_in(data: PinSignInIn) -> SessionOut:
    """Exchange e-mail + PIN for a session token. Failures never say whether the user exists."""
    signed_in = await resources().pin_signin.sign_in(data.email, data.pin, client_address())
    return SessionOut(token=signed_in.token, expires_in=signed_in.expires_in, user=UserOut(**signed_in.user.public()))


@blueprint.post("/mobile-auth")
@document_request(MobileAuthIn)
async def mobile_auth() -> Response:
    """Legacy session sign-in by e-mail alone. Gone (410, whatever the body) unless ALLOW_INSECURE_SESSION_AUTH=true."""
    rs = resources()
    if not rs.settings.allow_insecure_session_auth:
        # Decided before the body is read: a removed route answers 410 to anything, not 400 to odd bodies.
        raise APIError(
            410,
            "gone",
            "/mobile-auth signed users in without a secret and has been removed. Use an Auth0 access token, "
            "an API key (x-api-key) or PIN sign-in (POST /api/auth/pin).",
        )
    try:
        data = MobileAuthIn.model_validate(await request.get_json(force=True))
    except (ValidationError, BadRequest):
        raise APIError(400, "validation_error", 'Send JSON {"email": ...}.') from None
    log.warning("SECURITY WARNING: insecure /mobile-auth sign-in used from %s", client_address())
    user = await users.get_user_by_email(rs.db(), data.email.strip())
    if user is None:
        raise APIError(401, "invalid_credentials", "Unknown user.")
    return jsonify(
        {
            "token": rs.sessions.issue(user.id, user.pin_hash),
            "token_type": "Bearer",
            "expires_in": rs.sessions.ttl_s,
            "user": user.public(),
            "warning": "insecure session auth is enabled on this server",
        }
    )
