"""One error type for the whole service; `web/errors.py` renders it as JSON, the sockets as `error` events."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error a client can act on: HTTP status, a stable machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


class ProviderUnconfigured(APIError):
    """A feature needs a provider whose variables are not set: 503 naming them."""

    def __init__(self, provider: str, missing: tuple[str, ...]) -> None:
        names = ", ".join(missing)
        super().__init__(
            503,
            "provider_unconfigured",
            f"{provider} is not configured on this server: set {names}",
            extra={"provider": provider, "missing": list(missing)},
        )


class DatabaseNotReady(APIError):
    """The database is not connected (yet, or any more): features that need it answer 503."""

    def __init__(self) -> None:
        super().__init__(503, "database_unavailable", "The database is not reachable right now.")
