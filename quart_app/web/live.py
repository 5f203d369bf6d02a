"""`GET`/`HEAD /health/live` answered in the ASGI layer, before Socket.IO and Quart.

Liveness is polled by balancers and orchestrators and says only "the event loop answers"; through Quart
each answer costs a request context, the before/after hooks and the response conversion (more than half of
the server's CPU per request: docs/performance.md). `LivenessFirst` answers it with bytes built once when
the app is built: the body and headers of the Quart route `/health/live` (content type and length, the
security headers of `web.headers`, `Vary: Origin` when CORS is on), plus the `X-Request-ID` of the request
(the caller's when valid, else a fresh one, as every Quart answer). It is timed on `/metrics` like any
request, under the route `/health/live`.

Everything else goes to the wrapped app unchanged: lifespan and websocket scopes, other paths (also
`/health/live/` and the path under APP_ROUTE_PREFIX), other methods (Quart's 405), and requests whose
answer Quart would shape differently: a CORS request (`Origin`, when CORS is on) and a request with a body.
The Quart route stays: in-process test clients and anything that calls Quart directly still reach it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from werkzeug.sansio.response import Response

from ..resources import Resources
from .headers import request_id, security_headers
from .state import RESOURCES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LIVE_PATH = "/health/live"
LIVE_ROUTE = "/health/live"  # the route template /metrics records, as Quart's url_rule would
LIVE_METHODS = frozenset({"GET", "HEAD"})
# A request with any of these gets Quart's answer (CORS headers, body limits), not the prebuilt one.
_BODY = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True)
class LiveAnswer:
    """The prebuilt answer: `head` + the request's X-Request-ID + `tail` are the headers, in Quart's order."""

    body: bytes
    head: tuple[tuple[bytes, bytes], ...]
    tail: tuple[tuple[bytes, bytes], ...]
    cors: bool  # CORS is on: a request with `Origin` goes to Quart (quart-cors answers it)

    @classmethod
    def of(cls, response: Response, *, production: bool, cors: bool) -> LiveAnswer:
        """From the Quart response the route builds (`app.json.response(...)`), before any after_request hook."""
        body = _body_of(response)
        head = tuple((k.lower().encode(), v.encode()) for k, v in response.headers.items())
        tail = [(name.lower().encode(), value.encode()) for name, value in security_headers(production=production)]
        if cors:
            tail.append((b"vary", b"Origin"))  # quart-cors marks every answer without an allowed Origin
        return cls(body, head, tuple(tail), cors)


def _body_of(response: Response) -> bytes:
    data = getattr(getattr(response, "response", None), "data", None)  # Quart's DataBody
    if not isinstance(data, bytes):
        raise TypeError("the liveness answer must be a plain (non-streamed) body")
    return data


class LivenessFirst:
    """ASGI wrapper: `/health/live` answered from `answer`; every other scope goes to `app` untouched."""

    def __init__(self, app: ASGIApp, answer: LiveAnswer, extensions: MutableMapping[str, Any]) -> None:
        self.app = app
        self.answer = answer
        self.extensions = extensions  # the Quart app's: RESOURCES is there while the app is serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != LIVE_PATH or scope["method"] not in LIVE_METHODS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = self.answer
        incoming: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if incoming is None:
                    incoming = value.decode("latin1")  # as Quart reads headers; the first one counts
            elif name in _BODY or (answer.cors and name == b"origin"):
                await self.app(scope, receive, send)
                return
        headers = [*answer.head, (b"x-request-id", request_id(incoming or "").encode()), *answer.tail]
        method = scope["method"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else answer.body})
        resources = self.extensions.get(RESOURCES)
        if isinstance(resources, Resources):
            resources.monitoring.metrics.observe_http(method, LIVE_ROUTE, 200, time.perf_counter() - started)
