"""Real Socket.IO clients for live-server tests: connect, record what arrives, await it with timeouts.

Nothing here sleeps for a fixed time to "let things settle": events are awaited through futures, and
server-side state that has no event (connection counts in /health, shown to admins) is polled against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import socketio
import websockets

from tests.support.live_server import LiveServer

# Generous enough for a loaded 2-core CI box, small enough that a hang fails fast.
EVENT_TIMEOUT = 10.0


class Recorder:
    """Collects (event, payload) pairs from one client and lets a test await the first match."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._waiters: list[tuple[str, Callable[[Any], bool], asyncio.Future[Any]]] = []

    def record(self, name: str, payload: Any = None) -> None:
        self.events.append((name, payload))
        for waiter in list(self._waiters):
            wanted, predicate, future = waiter
            if wanted == name and not future.done() and predicate(payload):
                future.set_result(payload)
                self._waiters.remove(waiter)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    async def wait_for(
        self, name: str, predicate: Callable[[Any], bool] = lambda _: True, within: float = EVENT_TIMEOUT
    ) -> Any:
        """The payload of the first `name` event matching `predicate`, past or future."""
        for seen, payload in self.events:
            if seen == name and predicate(payload):
                return payload
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((name, predicate, future))
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            raise AssertionError(f"no {name!r} event within {within}s; got {self.names()}") from None


def from_instance(instance: str) -> Callable[[Any], bool]:
    """Predicate for instance_up/instance_down payloads of one instance (others may share the Redis DB)."""
    return lambda payload: isinstance(payload, dict) and payload.get("instance") == instance


async def connect(
    url: str, transports: list[str], headers: dict[str, str] | None = None
) -> tuple[socketio.AsyncClient, Recorder]:
    """A connected AsyncClient (no auto-reconnect, so a server disconnect stays visible) and its Recorder."""
    client = socketio.AsyncClient(reconnection=False)
    recorder = Recorder()
    for event in ("instance_up", "instance_down"):
        client.on(event, lambda data=None, event=event: recorder.record(event, data))
    client.on("connect", lambda: recorder.record("connect"))
    client.on("disconnect", lambda reason=None: recorder.record("disconnect", reason))
    await client.connect(url, transports=transports, headers=headers or {}, wait_timeout=EVENT_TIMEOUT)
    return client, recorder


async def close_all(clients: list[socketio.AsyncClient]) -> None:
    """Disconnect whatever is still connected (a server-disconnected client needs nothing)."""
    for client in clients:
        if client.connected:
            try:
                await asyncio.wait_for(client.disconnect(), 5)
            except Exception:  # the server may already be gone; the test's own assertions decide
                pass


async def health(server: LiveServer) -> dict[str, Any]:
    """The server's `/health` with its detail (instance, connections, backends): asked with an admin's key."""
    headers = {"x-api-key": await server.admin_key()}
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(server.url + "/health", headers=headers)
    return response.json()


async def wait_until(
    probe: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], within: float = EVENT_TIMEOUT
) -> Any:
    """Poll `probe()` until `accept(value)`; for server state that emits no event."""
    deadline = time.monotonic() + within
    value = None
    while time.monotonic() < deadline:
        value = await probe()
        if accept(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {within}s; last value: {value!r}")


async def root_connections(server: LiveServer) -> int:
    return int((await health(server))["connections"].get("/", 0))


async def idle(server: LiveServer) -> None:
    """Wait until a shared server has no Socket.IO clients left from an earlier test."""
    await wait_until(lambda: root_connections(server), lambda n: n == 0)


class RawSocketIO:
    """Engine.IO v4 / Socket.IO v5 spoken by hand over a `websockets` connection, to send what a
    well-behaved client never would (malformed or raw packets) and to see exactly what the server sends."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.open_payload: dict[str, Any] = {}

    @classmethod
    async def open(cls, ws_url: str, join_namespace: bool = True) -> RawSocketIO:
        ws = await websockets.connect(ws_url + "/socket.io/?EIO=4&transport=websocket", open_timeout=EVENT_TIMEOUT)
        raw = cls(ws)
        first = await raw.recv()
        assert first.startswith("0"), f"expected an Engine.IO OPEN packet, got {first!r}"
        raw.open_payload = json.loads(first[1:])
        if join_namespace:
            await ws.send("40")  # Socket.IO CONNECT to "/"
            reply = await raw.recv()
            assert reply.startswith("40{"), f"expected a Socket.IO CONNECT ack, got {reply!r}"
        return raw

    async def recv(self, within: float = EVENT_TIMEOUT) -> str:
        message = await asyncio.wait_for(self.ws.recv(), within)
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def recv_skipping_pings(self, within: float = EVENT_TIMEOUT) -> str:
        """Next packet other than an Engine.IO PING (answered with PONG so the server keeps us)."""
        deadline = time.monotonic() + within
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message == "2":
                await self.ws.send("3")
                continue
            return message

    async def ping_server(self, ack_id: int, within: float = EVENT_TIMEOUT) -> dict[str, Any]:
        """Emit `ping_server` with ack id `ack_id` and return the ack payload, skipping unrelated packets."""
        await self.ws.send(f'42{ack_id}["ping_server"]')
        prefix = f"43{ack_id}["
        deadline = time.monotonic() + within
        while True:
            message = await self.recv_skipping_pings(max(0.01, deadline - time.monotonic()))
            if message.startswith(prefix):
                return json.loads(message[len(prefix) - 1 :])[0]

    async def close(self) -> None:
        await self.ws.close()
