"""One error type for the whole API, rendered as JSON in one place."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from pydantic import ValidationError
from quart import Quart, g, jsonify
from quart_schema import RequestSchemaValidationError
from redis import exceptions as redis_exceptions
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


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


def _request_id() -> str | None:
    return getattr(g, "request_id", None)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def handle_api_error(error: APIError):  # type: ignore[no-untyped-def]
        body = error.body()
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        return jsonify(body), error.status, error.headers

    @app.errorhandler(RequestSchemaValidationError)
    async def handle_validation_error(error: RequestSchemaValidationError):  # type: ignore[no-untyped-def]
        body: dict[str, Any] = {"error": "validation_error", **_describe_validation(error.validation_error)}
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        return jsonify(body), 400

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException):  # type: ignore[no-untyped-def]
        code = (error.name or "error").lower().replace(" ", "_")
        body: dict[str, Any] = {"error": code, "message": error.description or error.name}
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        headers = dict(error.get_headers()) if error.code == 405 else {}
        headers.pop("Content-Type", None)
        return jsonify(body), error.code or 500, headers

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception):  # type: ignore[no-untyped-def]
        outage = _dependency_outage(error)
        if outage is not None:
            code, message = outage
            log.error("%s (request_id=%s): %s", code, _request_id(), type(error).__name__)
            body = {"error": code, "message": message, "request_id": _request_id()}
            return jsonify(body), 503, {"Retry-After": "5"}
        log.exception("unhandled error (request_id=%s)", _request_id())
        body = {"error": "internal_error", "message": "An internal error occurred.", "request_id": _request_id()}
        return jsonify(body), 500


def _dependency_outage(error: BaseException) -> tuple[str, str] | None:
    """Connection-level failures of Redis or the database (refused, reset, pool closed), not query bugs."""
    if isinstance(error, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)):
        return "message_queue_unavailable", "Redis is not reachable right now."
    if isinstance(error, (ConnectionError, TimeoutError, asyncpg.exceptions.PostgresConnectionError,
                          asyncpg.exceptions.InterfaceError)):
        return "database_unavailable", "The database is not reachable right now."
    return None


def _describe_validation(error: Exception) -> dict[str, Any]:
    """Name every offending field, e.g. {"fields": {"pin": "String should have at least 4 characters"}}."""
    if isinstance(error, ValidationError):
        fields: dict[str, str] = {}
        for item in error.errors():
            name = ".".join(str(part) for part in item.get("loc", ())) or "body"
            fields[name] = item.get("msg", "invalid")
        summary = "; ".join(f"{name}: {msg}" for name, msg in fields.items())
        return {"message": f"Invalid request: {summary}", "fields": fields}
    return {"message": "Invalid request body: expected JSON matching the documented schema.", "fields": {}}
