"""An ASGI wrapper that measures the serving process's event-loop lag, for benchmarks.

    LAG_PROBE_APP=asgi:application hypercorn --config hypercorn.toml bench._lag_probe:app

A task in the worker's loop sleeps PERIOD_S at a time and records how late it wakes up: that is how long
anything else in the loop had to wait (a chunk to be forwarded, a result to be relayed). `GET /__bench/lag`
answers {samples, p50_ms, p99_ms, max_ms, cpu_s} since the last `GET /__bench/lag?reset=1`; `cpu_s` is the
process's CPU time, user + system, over the same interval. Every other request goes to the wrapped app
unchanged (lifespan included).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

PERIOD_S = 0.01

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class LagProbe:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.lags: list[float] = []
        self.cpu_mark = time.process_time()
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample())
        if scope["type"] == "http" and scope["path"] == "/__bench/lag":
            await self._answer(scope, send)
            return
        await self.app(scope, receive, send)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(PERIOD_S)
            self.lags.append(max(0.0, loop.time() - before - PERIOD_S))

    async def _answer(self, scope: Scope, send: Send) -> None:
        lags = sorted(self.lags)
        body = {
            "samples": len(lags),
            "p50_ms": round(_pct(lags, 50) * 1000, 2),
            "p99_ms": round(_pct(lags, 99) * 1000, 2),
            "max_ms": round((lags[-1] if lags else 0.0) * 1000, 2),
            "cpu_s": round(time.process_time() - self.cpu_mark, 4),
        }
        if b"reset=1" in scope.get("query_string", b""):
            self.lags = []
            self.cpu_mark = time.process_time()
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


def _pct(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))]


def _wrapped() -> Any:
    module_name, _, attribute = os.environ.get("LAG_PROBE_APP", "asgi:application").partition(":")
    return getattr(importlib.import_module(module_name), attribute)


app = LagProbe(_wrapped())
