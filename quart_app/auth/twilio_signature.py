"""Twilio request signatures (X-Twilio-Signature), checked against the public URL Twilio called.

Behind Render's proxy the app sees http://internal-host/..., but Twilio signed https://public-host/...,
so the URL is rebuilt from PUBLIC_BASE_URL, or else from X-Forwarded-Proto/Host.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm

from ..settings import Settings
from .identity import HeaderLookup

log = logging.getLogger(__name__)


def public_url(settings: Settings, scheme: str, host: str, full_path: str, headers: HeaderLookup) -> str:
    """The URL as Twilio saw it. `full_path` includes the query string."""
    if settings.public_base_url:
        return settings.public_base_url + full_path
    proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip() or scheme
    forwarded_host = headers.get("X-Forwarded-Host", "").split(",")[0].strip() or host
    if proto in ("ws", "wss"):
        proto = {"ws": "http", "wss": "https"}[proto]
    return f"{proto}://{forwarded_host}{full_path}"


def websocket_url(http_url: str) -> str:
    """Media Streams are signed over the wss:// form of the URL."""
    parts = urlsplit(http_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl()


def signature_valid(auth_token: str, url: str, params: Any, headers: HeaderLookup) -> bool:
    signature = headers.get("X-Twilio-Signature", "")
    if not signature or len(signature) > 256:
        return False
    # Twilio asks for HMAC-SHA256 through this header; absent means the legacy HMAC-SHA1.
    algorithm = get_signature_algorithm(headers.get("X-Twilio-Webhooks-Signature-Settings"))
    return bool(RequestValidator(auth_token).validate(url, params, signature, algorithm))


def validation_enabled(settings: Settings) -> bool:
    if settings.twilio_validate_signatures:
        return True
    log.warning("Twilio signature validation is OFF (APP_ENV=development only); do not expose this server")
    return False
