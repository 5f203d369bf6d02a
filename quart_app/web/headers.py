"""Response headers every answer carries: no sniffing, no framing, no caching of per-user data, HSTS."""

from __future__ import annotations

from quart import Response

# Two years, the preload list's minimum; only in production, where the service is behind https.
HSTS = "max-age=63072000; includeSubDomains"


def apply_security_headers(response: Response, *, production: bool) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # No page of ours may be framed by another site (clickjacking); pages that set their own CSP keep it.
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    headers.setdefault("Referrer-Policy", "no-referrer")
    # API answers are per caller and may carry keys or tokens: no shared or browser cache keeps them.
    # A route that is safe to cache says so by setting its own Cache-Control.
    headers.setdefault("Cache-Control", "no-store")
    if production:
        headers.setdefault("Strict-Transport-Security", HSTS)
