"""Response headers every answer carries: no sniffing, no framing, no caching of per-user data, HSTS.

`security_headers` is the one list: Quart's after_request applies it to every response (a header the route
set itself wins), and `web.live.LivenessFirst` sends it with the liveness answer it gives before Quart.
"""

from __future__ import annotations

import uuid

from quart import Response

# Two years, the preload list's minimum; only in production, where the service is behind https.
HSTS = "max-age=63072000; includeSubDomains"

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    # No page of ours may be framed by another site (clickjacking); pages that set their own CSP keep it.
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    # API answers are per caller and may carry keys or tokens: no shared or browser cache keeps them.
    # A route that is safe to cache says so by setting its own Cache-Control.
    ("Cache-Control", "no-store"),
)


def request_id(incoming: str) -> str:
    """The X-Request-ID an answer carries: the caller's when 1-64 printable characters, else a fresh uuid4 hex."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex


def security_headers(*, production: bool) -> tuple[tuple[str, str], ...]:
    """The headers in the order they are added; HSTS only in production."""
    return (*SECURITY_HEADERS, ("Strict-Transport-Security", HSTS)) if production else SECURITY_HEADERS


def apply_security_headers(response: Response, *, production: bool) -> None:
    headers = response.headers
    for name, value in security_headers(production=production):
        headers.setdefault(name, value)
