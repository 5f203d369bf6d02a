"""Route guards: authenticate, rate-limit, and require roles, on HTTP requests and WebSocket upgrades.

Handlers read `g.principal`. One Authenticator serves REST, Socket.IO handshakes and plain WebSockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from quart import Response, current_app, g, jsonify, request, websocket

from ..auth.counters import retry_after_header
from ..auth.identity import Principal, credential_from_headers
from ..errors import APIError
from .state import resources

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


async def authenticate_request() -> Principal:
    return await resources().authenticator.authenticate(credential_from_headers(request.headers))


async def enforce_rate_limit(principal: Principal) -> None:
    """Count the request against its API key and its user: both budgets must allow it."""
    decision = await resources().rate_limiter.check_all(principal.rate_subjects)
    g.rate_limit = decision
    if not decision.allowed:
        raise APIError(
            429,
            "rate_limited",
            f"Rate limit of {decision.limit} requests per minute exceeded.",
            headers={"Retry-After": retry_after_header(decision.retry_after)},
            extra={"retry_after": int(retry_after_header(decision.retry_after))},
        )


def require_auth(*, admin: bool = False, rate_limited: bool = True) -> Callable[[F], F]:
    """Authenticate the caller (API key, Auth0 token or PIN session); optionally require admin and meter."""

    async def check() -> None:
        principal = await authenticate_request()
        if admin and not principal.is_admin:
            raise APIError(403, "forbidden", "This action needs the admin role.")
        if rate_limited:
            await enforce_rate_limit(principal)
        g.principal = principal

    def decorator(handler: F) -> F:
        @wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not getattr(g, "authenticated_early", False):
                await check()
            return await handler(*args, **kwargs)

        setattr(wrapper, AUTH_CHECK, check)
        return wrapper  # type: ignore[return-value]

    return decorator


AUTH_CHECK = "__voice_backend_auth_check__"


async def authenticate_before_body() -> None:
    """A before_request hook: run the route's `require_auth` check before anything reads the body.

    quart-schema's `validate_request` wraps the handler from outside and parses the JSON body before the
    handler (and so `require_auth`) runs; this hook finds the check on the wrapped chain and runs it
    first, so an unauthenticated caller never gets a body buffered or parsed.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    while view is not None:
        check = getattr(view, AUTH_CHECK, None)
        if check is not None:
            await check()
            g.authenticated_early = True
            return
        view = getattr(view, "__wrapped__", None)


def require_websocket_auth(*, admin: bool = False, rate_limited: bool = True) -> Callable[[F], F]:
    """Authenticate a WebSocket upgrade from `Authorization: Bearer` or `x-api-key`, before accepting it.

    A refused upgrade gets a real HTTP response (401/403/429/503 with the usual JSON body) instead of the
    101: hypercorn sends it through the ASGI `websocket.http.response` extension, so clients see why.
    """

    def decorator(handler: F) -> F:
        @wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                principal = await resources().authenticator.authenticate(credential_from_headers(websocket.headers))
                if admin and not principal.is_admin:
                    raise APIError(403, "forbidden", "This action needs the admin role.")
                if rate_limited:
                    await enforce_rate_limit(principal)
            except APIError as exc:
                return refusal(exc)
            g.principal = principal
            return await handler(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def refusal(exc: APIError) -> Response:
    """An HTTP response refusing a WebSocket upgrade, with the same JSON body as a REST error."""
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def current_principal() -> Principal:
    principal = getattr(g, "principal", None)
    if not isinstance(principal, Principal):
        raise APIError(401, "unauthorized", "Authentication required.")
    return principal


def client_address() -> str:
    """The caller's address, for lockouts and logs.

    X-Forwarded-For is "client, proxy1, proxy2": a client can write anything at its left end, so only
    the entries our own TRUSTED_PROXY_COUNT proxies appended (at the right end) are believed.
    """
    return forwarded_client(
        request.headers.get("X-Forwarded-For", ""), request.remote_addr, resources().settings.trusted_proxy_count
    )


def forwarded_client(forwarded_for: str, remote_addr: str | None, trusted_proxies: int) -> str:
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if trusted_proxies > 0 and hops:
        # The last proxy we trust appended the address it saw: that is the client, unless the chain is short.
        index = max(len(hops) - trusted_proxies, 0)
        return hops[index][:64]
    return (remote_addr or "unknown")[:64]
