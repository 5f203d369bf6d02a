"""Graceful shutdown of a live hypercorn server with Socket.IO clients connected.

On SIGTERM every client must hear `instance_down` and then a server-initiated disconnect at once (so it
reconnects to another instance during a rolling deploy), and the process must exit 0 within seconds:
well inside hypercorn's graceful_timeout (20 s in hypercorn.toml), which is what it would take if the
open WebSockets were left for hypercorn to wait out.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx
import pytest
import socketio

from tests.sockets.clients import RawSocketIO, close_all, connect, from_instance, health
from tests.support.live_server import LiveServer

DRAIN_DEADLINE_S = 5.0  # SIGTERM -> every client told and disconnected
EXIT_DEADLINE_S = 8.0  # SIGTERM -> process gone (graceful_timeout is 20 s)


@pytest.fixture(params=["memory", "redis"])
def message_queue_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Without a message queue, and with Redis (AsyncRedisManager plus the Redis client to close)."""
    if request.param == "memory":
        return {}
    return {"REDIS_URL": request.getfixturevalue("redis_url")}


async def test_sigterm_announces_disconnects_and_exits_cleanly(
    live_server_factory, message_queue_env: dict[str, str]
) -> None:
    instance = f"shutdown-{secrets.token_hex(4)}"  # other test runs may share the Redis channel
    server: LiveServer = live_server_factory(INSTANCE_ID=instance, **message_queue_env)
    expected_backend = "redis" if message_queue_env else "memory"
    assert (await health(server))["checks"]["message_queue"]["backend"] == expected_backend

    modes = {"websocket": ["websocket"], "polling": ["polling"], "upgraded": ["polling", "websocket"]}
    connected = {name: await connect(server.url, transports) for name, transports in modes.items()}
    raw = await RawSocketIO.open(server.ws_url)
    clients = [client for client, _ in connected.values()]
    try:
        assert connected["polling"][0].transport() == "polling"
        assert (await connected["polling"][0].call("ping_server", timeout=10))["instance"] == instance
        assert (await health(server))["connections"]["/"] == 4

        signalled = time.monotonic()
        server.signal()

        # Both arrive (python-socketio runs event handlers as tasks, so their order as seen by handlers is
        # not the wire order; the raw client below checks the wire order).
        for name, (client, recorder) in connected.items():
            down = await recorder.wait_for("instance_down", from_instance(instance), within=DRAIN_DEADLINE_S)
            assert down["version"], name
            reason = await recorder.wait_for("disconnect", within=DRAIN_DEADLINE_S)
            assert reason == client.reason.SERVER_DISCONNECT, f"{name}: {reason}"
            assert not client.connected, name

        # The raw client sees the exact packets: the event, then the Socket.IO DISCONNECT. Like every real
        # client it then closes its side (the server does not close the Engine.IO connection itself, so a
        # client ignoring the DISCONNECT would hold shutdown until hypercorn's graceful_timeout).
        event = await raw.recv_skipping_pings(within=DRAIN_DEADLINE_S)
        assert event.startswith("42"), event
        assert json.loads(event[2:]) == ["instance_down", {"instance": instance, "version": down["version"]}]
        assert await raw.recv_skipping_pings(within=DRAIN_DEADLINE_S) == "41"
        await raw.close()
        drained_in = time.monotonic() - signalled
        assert drained_in < DRAIN_DEADLINE_S

        code = await asyncio.to_thread(server.wait_exit, EXIT_DEADLINE_S)
        exited_in = time.monotonic() - signalled
    finally:
        await close_all(clients)
        await raw.close()

    assert code == 0, server.output()
    assert exited_in < EXIT_DEADLINE_S, f"took {exited_in:.1f}s to exit\n{server.output()}"
    log = server.output()
    assert "draining Socket.IO clients" in log
    # Database, Redis and HTTP clients are closed before this line is logged (process.serving).
    assert log.index("drained Socket.IO clients") < log.index("shutdown complete"), log
    assert "Traceback" not in log, log

    # Nothing accepts connections any more.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(server.url + "/health/live")
    late = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await late.connect(server.url, transports=["websocket"], wait_timeout=2)


async def test_sigterm_without_clients_exits_at_once(live_server: LiveServer) -> None:
    signalled = time.monotonic()
    live_server.signal()
    assert await asyncio.to_thread(live_server.wait_exit, EXIT_DEADLINE_S) == 0
    assert time.monotonic() - signalled < EXIT_DEADLINE_S
    assert "shutdown complete" in live_server.output()
