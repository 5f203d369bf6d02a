"""Provider failures, mapped to HTTP by the edges: timeout 504, upstream error 502, unconfigured 503."""

from __future__ import annotations

import re

from ..errors import APIError

_SECRETISH = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|Token\s+\S+|key[=:]\s*\S+)", re.IGNORECASE)


def sanitize(message: str, limit: int = 300) -> str:
    """Upstream messages can echo keys or whole requests back; keep a short, key-free first line."""
    first = (message or "").strip().splitlines()[0] if message and message.strip() else ""
    return _SECRETISH.sub("[redacted]", first)[:limit]


class ProviderTimeout(APIError):
    def __init__(self, provider: str, seconds: float) -> None:
        super().__init__(
            504, "provider_timeout", f"{provider} did not answer within {seconds:g}s", extra={"provider": provider}
        )


class ProviderFailed(APIError):
    def __init__(self, provider: str, upstream_status: int | None, message: str) -> None:
        detail = sanitize(message) or "no detail"
        super().__init__(
            502,
            "provider_error",
            f"{provider} failed: {detail}",
            extra={"provider": provider, "upstream_status": upstream_status},
        )
