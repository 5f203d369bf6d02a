"""Shared machinery for every fake: request recording, injected faults, and the app skeleton.

A fake is a plain object holding state (what was asked, what to answer next) plus an aiohttp
application built from it. Tests mutate the state from any thread; the server reads it from its own
loop, so every shared structure is guarded by one lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Real providers accept uploads far above aiohttp's 1 MiB default; size limits are enforced by the fakes.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class RecordedRequest:
    """What one request looked like on the wire, for assertions."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_size: int | None = None
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int | None = None
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def param(self, name: str) -> str | None:
        """First query-string value for `name`."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    """One injected misbehaviour: a delay, then either an error status or the normal answer."""

    status: int | None = None
    delay: float = 0.0
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    gate: threading.Event | None = None  # hold the request until the test sets it (hold_next)

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


RECORD = web.RequestKey("fake_record", RecordedRequest)


class FakeService:
    """Base class: subclasses add routes in `routes()` and shape errors in `error_response()`."""

    name = "fake"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self.base_url: str = ""

    # ----- recorded traffic -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose path starts with `path` (and whose method matches, if given)."""
        return [r for r in self.requests if r.path.startswith(path) and (method is None or r.method == method)]

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # ----- fault injection --------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` in the provider's error shape."""
        self._add_faults(Fault(status, delay, message, dict(headers or {}), path) for _ in range(count))

    def hang_next(self, seconds: float, count: int = 1, *, path: str | None = None) -> None:
        """Hold the next `count` matching requests for `seconds` before answering normally."""
        self._add_faults(Fault(None, seconds, path=path) for _ in range(count))

    def hold_next(self, count: int = 1, *, path: str | None = None) -> threading.Event:
        """Hold the next `count` matching requests (after recording them) until the returned event is set, then
        answer normally: a provider paused mid-job, released by the test rather than by a clock."""
        gate = threading.Event()
        self._add_faults(Fault(None, 0.0, path=path, gate=gate) for _ in range(count))
        return gate

    def delay_next(self, *delays: float, path: str | None = None) -> None:
        """Delay successive matching requests by the given seconds each, e.g. to answer out of order."""
        self._add_faults(Fault(None, d, path=path) for d in delays)

    def _add_faults(self, faults: Any) -> None:
        with self._lock:
            self._faults.extend(faults)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(path):
                    return self._faults.pop(index)
        return None

    # ----- hooks for subclasses ---------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        raise NotImplementedError

    def error_response(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        """The provider's error body for an injected `status`."""
        raise NotImplementedError

    def exempt(self, request: web.Request) -> bool:
        """Paths that are never recorded nor faulted (none by default)."""
        return False

    # ----- app --------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application serving this fake; the same state object may back several apps."""
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._middleware])
        app.add_routes(self.routes())
        return app

    def record(self, request: web.Request) -> RecordedRequest:
        """The record for `request`, created by the middleware; handlers add body details to it."""
        return request[RECORD]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.exempt(request):
            return await handler(request)
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=query,
            headers=dict(request.headers),
            body_size=request.content_length,
        )
        request[RECORD] = record
        with self._lock:
            self._requests.append(record)
        fault = self._take_fault(request.path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.gate is not None:
            while not fault.gate.is_set():  # noqa: ASYNC110 - a threading.Event, set from the test's thread
                await asyncio.sleep(0.02)
        if fault is not None and fault.status is not None:
            await request.read()  # drain the upload so the client sees the status, not a reset
            response = self.error_response(fault.status, fault.message, fault.headers)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                record.status = exc.status
                raise
        record.status = response.status
        return response
