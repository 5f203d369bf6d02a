"""`/health/live` answered before Socket.IO and Quart (quart_app/web/live.py), on a real hypercorn.

The app is served as shipped (`asgi_application`) behind a test router that sends requests marked
`x-test-route: quart` straight to the Socket.IO+Quart app inside LivenessFirst, so each answer of the Quart
route can be compared byte for byte with LivenessFirst's on the same server. The Quart view is counted to
tell which of the two answered.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import websockets
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart, websocket

from quart_app import create_app
from quart_app.settings import Settings
from quart_app.web.live import LivenessFirst
from tests.support.inprocess import served
from tests.support.live_server import LiveServer

QUART = (b"x-test-route", b"quart")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin1").split("\r\n")
        self.status = int(status.split()[1])
        self.headers = [tuple(line.split(": ", 1)) for line in lines]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def comparable(self) -> tuple[int, list[tuple[str, ...]], bytes]:
        """Everything but the per-request values (date, request id) and the set-ordered Allow."""
        skipped = {"date", "x-request-id", "allow"}
        return self.status, [h for h in self.headers if h[0].lower() not in skipped], self.body


async def request(
    port: int,
    method: str,
    target: str = "/health/live",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    via_quart: bool = False,
) -> Answer:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if via_quart:
        lines.append(f"{QUART[0].decode()}: {QUART[1].decode()}")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body)
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return Answer(raw)


def router(shipped: LivenessFirst) -> Callable[..., Any]:
    """The shipped app, except that a request marked `x-test-route: quart` skips LivenessFirst."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and QUART in scope["headers"]:
            await shipped.app(scope, receive, send)
        else:
            await shipped(scope, receive, send)

    return app


def make_app(tmp_path: Path, **env: str) -> Quart:
    values = {"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/live.db", **env}
    if values["APP_ENV"] == "production":
        values.setdefault("SECRET_KEY", "p" * 48)
    app = create_app(Settings.from_env(values))

    @app.websocket("/probe/echo")
    async def echo() -> None:
        await websocket.accept()
        await websocket.send(await websocket.receive())

    return app


def count_view(app: Quart) -> list[int]:
    """Counts calls of the Quart route `/health/live` (LivenessFirst never calls it)."""
    calls = [0]
    view = app.view_functions["health.live"]

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await view(*args, **kwargs)

    app.view_functions["health.live"] = counted
    return calls


@asynccontextmanager
async def serving(app: Quart) -> AsyncIterator[int]:
    async with served(app, wrap=router) as port:
        yield port


CASES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/health/live", {}),
    ("HEAD", "/health/live", {}),
    ("GET", "/health/live?probe=1", {}),
    ("GET", "/health/live", {"X-Request-ID": "abc-123"}),
    ("GET", "/health/live", {"X-Request-ID": "r" * 64}),
    ("HEAD", "/health/live", {"X-Request-ID": "abc-123"}),
    ("GET", "/health/live", {"X-Request-ID": "r" * 65}),  # too long: a fresh id instead
    ("GET", "/health/live", {"X-Request-ID": "a\tb"}),  # not printable: a fresh id instead
    ("GET", "/health/live", {"Cookie": "session=eyJ4Ijox.bad.sig"}),
    ("GET", "/health/live", {"Origin": "https://a.example"}),
]


@pytest.mark.parametrize(
    "env",
    [{}, {"APP_ENV": "production"}, {"CORS_ORIGINS": "https://a.example"}, {"CORS_ORIGINS": "*"}],
    ids=["test", "production", "cors-list", "cors-wildcard"],
)
async def test_the_same_bytes_and_headers_as_the_quart_route(tmp_path: Path, env: dict[str, str]) -> None:
    app = make_app(tmp_path, **env)
    calls = count_view(app)
    cors = "CORS_ORIGINS" in env
    async with serving(app) as port:
        for method, target, headers in CASES:
            before = calls[0]
            first = await request(port, method, target, headers)
            answered_by_quart = calls[0] - before
            quart = await request(port, method, target, headers, via_quart=True)
            assert calls[0] - before == answered_by_quart + 1  # the marked one did reach the Quart route
            # Only a CORS request with CORS on goes on to Quart: quart-cors shapes that answer.
            assert answered_by_quart == (1 if cors and "Origin" in headers else 0), (method, target, headers)
            assert first.comparable() == quart.comparable(), (method, target, headers)
            assert first.status == 200
            if method == "HEAD":
                assert first.body == b""
            else:
                assert json.loads(first.body)["status"] == "alive" and first.body.endswith(b"}\n")
            assert first.header("content-length") == quart.header("content-length")
            given = headers.get("X-Request-ID")
            for answer in (first, quart):
                rid = answer.header("x-request-id")
                if given in ("abc-123", "r" * 64):
                    assert rid == given
                else:
                    assert rid is not None and HEX32.match(rid), rid
            assert ("strict-transport-security" in dict(first.headers)) == (env.get("APP_ENV") == "production")
            assert first.header("set-cookie") is None and "cookie" not in (first.header("vary") or "").lower()
        assert first.header("cache-control") == "no-store"


async def test_other_methods_other_paths_and_bodies_fall_through_to_quart(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    calls = count_view(app)
    async with serving(app) as port:
        post = await request(port, "POST", body=b"{}", headers={"Content-Type": "application/json"})
        assert post.status == 405 and json.loads(post.body)["error"] == "method_not_allowed"
        assert set((post.header("allow") or "").split(", ")) == {"GET", "HEAD", "OPTIONS"}
        quart_post = await request(
            port, "POST", body=b"{}", headers={"Content-Type": "application/json"}, via_quart=True
        )
        assert post.comparable()[:2] == quart_post.comparable()[:2]
        assert (await request(port, "DELETE")).status == 405
        options = await request(port, "OPTIONS")
        assert options.status == 200 and set((options.header("allow") or "").split(", ")) >= {"GET", "HEAD"}
        assert calls[0] == 0
        # Not this path: Quart's 404 for the trailing slash and for the path under another prefix.
        assert (await request(port, "GET", "/health/live/")).status == 404
        assert (await request(port, "GET", "/x/health/live")).status == 404
        # A body (even on GET) goes to Quart, which applies its body limits.
        with_body = await request(port, "GET", body=b"{}")
        assert with_body.status == 200 and calls[0] == 1


def http_counts(text: str) -> dict[tuple[str, str, str], float]:
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "voice_http_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_count"):
                    found[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return found


async def test_each_answer_is_counted_and_lifespan_still_reaches_quart(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    calls = count_view(app)
    async with serving(app) as port:
        resources = app.extensions["resources"]  # while_serving ran: lifespan startup reached Quart
        metrics = resources.monitoring.metrics
        before = http_counts(metrics.exposition().decode())
        for _ in range(5):
            assert (await request(port, "GET")).status == 200
        for _ in range(2):
            assert (await request(port, "HEAD")).status == 200
        after = http_counts(metrics.exposition().decode())
        for method, n in (("GET", 5), ("HEAD", 2)):
            key = (method, "/health/live", "200")
            assert after.get(key, 0) - before.get(key, 0) == n, (method, before, after)
        # the Quart route counts under the same labels
        await request(port, "GET", via_quart=True)
        key = ("GET", "/health/live", "200")
        assert http_counts(metrics.exposition().decode())[key] == after[key] + 1
        assert calls[0] == 1
    assert "resources" not in app.extensions  # lifespan shutdown reached Quart too (while_serving's finally)


async def test_socketio_and_websockets_pass_through(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with serving(app) as port:
        for transports in (["websocket"], ["polling"]):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(f"http://127.0.0.1:{port}", transports=transports, wait_timeout=10)
            try:
                ack = await client.call("ping_server", {}, timeout=10)
                assert isinstance(ack, dict), ack
            finally:
                await client.disconnect()
        async with websockets.connect(f"ws://127.0.0.1:{port}/probe/echo") as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 10) == "hello"
        # A websocket to the liveness path is not answered by LivenessFirst: Quart has no such websocket route.
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://127.0.0.1:{port}/health/live"):
                pass


async def test_the_shipped_server_counts_liveness_on_metrics(live_server: LiveServer) -> None:
    """`asgi:application` under hypercorn.toml (uvloop): liveness, /health (lifespan opened the database) and
    `/metrics` with the liveness answers counted."""
    key = await live_server.admin_key()
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        assert (await http.get("/health")).status_code == 200

        async def counted() -> float:
            response = await http.get("/metrics", headers={"x-api-key": key})
            assert response.status_code == 200
            return http_counts(response.text).get(("GET", "/health/live", "200"), 0)

        before = await counted()
        for _ in range(3):
            live = await http.get("/health/live", headers={"X-Request-ID": "probe-1"})
            assert live.status_code == 200 and live.headers["x-request-id"] == "probe-1"
            assert live.json()["status"] == "alive"
        assert await counted() - before == 3
