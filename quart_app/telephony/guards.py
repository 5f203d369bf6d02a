"""Signature checks for Twilio webhooks (403) and Media Streams upgrades (close 1008)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from quart import request, websocket

from ..auth.twilio_signature import public_url, signature_valid, validation_enabled, websocket_url
from ..errors import APIError, ProviderUnconfigured
from ..web.state import resources

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _auth_token() -> str:
    settings = resources().settings
    if settings.twilio_auth_token is None:
        raise ProviderUnconfigured("twilio", ("TWILIO_AUTH_TOKEN",))
    return settings.twilio_auth_token.get_secret_value()


def twilio_webhook(handler: F) -> F:
    """Reject webhook requests whose X-Twilio-Signature does not match the public URL and form body."""

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings = resources().settings
        if validation_enabled(settings):
            token = _auth_token()
            form = await request.form
            full_path = request.full_path if request.query_string else request.path
            url = public_url(settings, request.scheme, request.host, full_path, request.headers)
            if not signature_valid(token, url, form, request.headers):
                raise APIError(403, "invalid_signature", "X-Twilio-Signature does not match this request.")
        return await handler(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


async def websocket_signature_ok() -> bool:
    """For Media Streams: call before `websocket.accept()`; on False close with 1008 (policy violation)."""
    settings = resources().settings
    if not validation_enabled(settings):
        return True
    if settings.twilio_auth_token is None:
        return False
    full_path = websocket.full_path if websocket.query_string else websocket.path
    url = websocket_url(public_url(settings, websocket.scheme, websocket.host, full_path, websocket.headers))
    return signature_valid(settings.twilio_auth_token.get_secret_value(), url, {}, websocket.headers)


async def refuse_unsigned_stream() -> bool:
    """Accept the upgrade and close it with 1008 when the signature is bad. True when it was refused.

    Closing before accept would make the server answer the upgrade with a bare HTTP 403; Twilio logs a
    close code, so the socket is accepted first and closed with 1008 (policy violation).
    """
    if await websocket_signature_ok():
        return False
    await websocket.accept()
    await websocket.close(1008, "invalid X-Twilio-Signature")
    return True
