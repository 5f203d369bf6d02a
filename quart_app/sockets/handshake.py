"""Socket.IO handshake authentication: `auth: {token}` checked by the same Authenticator as REST."""

from __future__ import annotations

import logging
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from ..auth.identity import Authenticator, AuthError, Principal
from ..errors import APIError

log = logging.getLogger(__name__)

# python-socketio sends ConnectionRefusedError(message[, data]) to the client as {"message", "data"?}.
INVALID = "Invalid or expired authentication token"


async def authenticate_handshake(authenticator: Authenticator, auth: Any, *, required: bool) -> Principal | None:
    """The principal for a handshake's `auth.token` (API key, Auth0 JWT or PIN session token).

    Raises ConnectionRefusedError, which the client sees as `connect_error` with `{"message": ...}`.
    """
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        if required:
            raise ConnectionRefusedError("Authentication required: pass auth: {token}")
        return None
    try:
        return await authenticator.authenticate(token)
    except AuthError:
        raise ConnectionRefusedError(INVALID) from None
    except APIError as exc:  # auth provider unconfigured or down, database unavailable
        raise ConnectionRefusedError(exc.message, {"error": exc.code}) from None
