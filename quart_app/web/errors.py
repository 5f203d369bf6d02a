"""Rendering every error as JSON with a stable code, the request id, and no internals."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from pydantic import ValidationError
from quart import Quart, Response, g, jsonify
from quart_schema import RequestSchemaValidationError
from redis import exceptions as redis_exceptions
from werkzeug.exceptions import HTTPException

from ..errors import APIError

log = logging.getLogger(__name__)

ErrorResponse = tuple[Response, int] | tuple[Response, int, dict[str, str]]


def _request_id() -> str | None:
    return getattr(g, "request_id", None)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(APIError)
    async def handle_api_error(error: APIError) -> ErrorResponse:
        body = error.body()
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        return jsonify(body), error.status, error.headers

    @app.errorhandler(RequestSchemaValidationError)
    async def handle_validation_error(error: RequestSchemaValidationError) -> ErrorResponse:
        body: dict[str, Any] = {"error": "validation_error", **_describe_validation(error.validation_error)}
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        return jsonify(body), 400

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException) -> ErrorResponse:
        code = (error.name or "error").lower().replace(" ", "_")
        body: dict[str, Any] = {"error": code, "message": error.description or error.name}
        if (rid := _request_id()) is not None:
            body["request_id"] = rid
        headers = dict(error.get_headers()) if error.code == 405 else {}
        headers.pop("Content-Type", None)
        return jsonify(body), error.code or 500, headers

    @app.errorhandler(Exception)
    async def handle_unexpected(error: Exception) -> ErrorResponse:
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
    if isinstance(
        error,
        (ConnectionError, TimeoutError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError),
    ):
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
