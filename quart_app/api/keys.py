"""API keys: create (shown once), list (no secrets), revoke."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_request, validate_response

from ..db import api_keys
from ..errors import APIError
from ..web.guards import current_principal, require_auth
from ..web.state import resources
from .identity import refuse_pin_session
from .schemas import ApiKeyCreatedOut, ApiKeyIn, ApiKeyListOut, ApiKeyOut

blueprint = Blueprint("keys", __name__)

MAX_ACTIVE_KEYS = 50


@blueprint.post("/api/keys")
@validate_request(ApiKeyIn)
@validate_response(ApiKeyCreatedOut, 201)
@require_auth()
async def create_key(data: ApiKeyIn) -> tuple[ApiKeyCreatedOut, int]:
    """Create an API key for the caller. The full key is in this response only.

    A key never expires, so it takes an Auth0 access token or an existing API key: a PIN session (a short
    secret, a 12-hour token) may not turn itself into a permanent credential (403 stronger_auth_required).
    """
    principal = current_principal()
    refuse_pin_session(principal, "Creating an API key")
    db = resources().db()
    user_id = principal.user.id
    active = [k for k in await api_keys.list_keys(db, user_id) if k.revoked_at is None]
    if len(active) >= MAX_ACTIVE_KEYS:
        raise APIError(409, "too_many_keys", f"At most {MAX_ACTIVE_KEYS} active keys; revoke one first.")
    record, plaintext = await api_keys.create_api_key(db, user_id, data.name)
    return ApiKeyCreatedOut(key=plaintext, **record.public()), 201


@blueprint.get("/api/keys")
@validate_response(ApiKeyListOut)
@require_auth()
async def list_keys() -> ApiKeyListOut:
    """The caller's keys, newest first, without secrets."""
    keys = await api_keys.list_keys(resources().db(), current_principal().user.id)
    return ApiKeyListOut(keys=[ApiKeyOut(**k.public()) for k in keys])


@blueprint.delete("/api/keys/<key_id>")
@require_auth()
async def revoke_key(key_id: str) -> tuple[str, int]:
    """Revoke one of the caller's keys; it stops working immediately."""
    if not await api_keys.revoke(resources().db(), current_principal().user.id, key_id):
        raise APIError(404, "not_found", "No such active key.")
    return "", 204
