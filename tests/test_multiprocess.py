"""Two server processes sharing Redis (and one PostgreSQL database): emits cross between processes.

Clients here use the websocket transport only. With more than one process (hypercorn workers or
instances behind a load balancer) Engine.IO long-polling needs sticky sessions: a polling session is a
series of separate HTTP requests that must all reach the process holding that session, and nothing
routes them so (hypercorn's workers share one listening socket; Render does not pin). A websocket is
one connection that stays with one process for its lifetime, and AsyncRedisManager carries broadcasts
to the clients of every process.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.sockets.clients import close_all, connect, from_instance, health
from tests.support.databases import create_database, drop_database, require_env
from tests.support.live_server import LiveServer


@pytest.fixture
async def database_env(tmp_path: Path) -> AsyncIterator[dict[str, dict[str, str]]]:
    """DATABASE_URL per server: one fresh PostgreSQL database for both, else a SQLite file each."""
    base = require_env("TEST_DATABASE_URL")
    if not base:
        yield {name: {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/{name}.db"} for name in ("a", "b")}
        return
    url = await create_database(base)
    try:
        yield {"a": {"DATABASE_URL": url}, "b": {"DATABASE_URL": url}}
    finally:
        await drop_database(base, url)


async def test_emits_cross_processes_through_redis(database_env, live_server_factory, redis_url: str) -> None:
    run = secrets.token_hex(4)  # other test runs may share the Redis channel: match on our instance ids
    ids = {"a": f"proc-a-{run}", "b": f"proc-b-{run}"}

    def start(name: str) -> LiveServer:
        return live_server_factory(REDIS_URL=redis_url, INSTANCE_ID=ids[name], **database_env[name])

    server_b = await asyncio.to_thread(start, "b")
    on_b, heard_on_b = await connect(server_b.url, ["websocket"])
    clients = [on_b]
    try:
        assert (await on_b.call("ping_server", timeout=10))["instance"] == ids["b"]

        # A starts after the client connected to B: its instance_up can only reach that client via Redis.
        server_a = await asyncio.to_thread(start, "a")
        up = await heard_on_b.wait_for("instance_up", from_instance(ids["a"]))
        assert up["version"]

        on_a, heard_on_a = await connect(server_a.url, ["websocket"])
        clients.append(on_a)
        # Acks come from the process the client is connected to, not through the queue.
        assert (await on_a.call("ping_server", timeout=10))["instance"] == ids["a"]
        assert (await on_b.call("ping_server", timeout=10))["instance"] == ids["b"]

        health_a, health_b = await health(server_a), await health(server_b)
        for body in (health_a, health_b):
            assert body["status"] == "healthy", body
            assert body["checks"]["message_queue"]["backend"] == "redis"
            # Counts are per process: each sees only its own client.
            assert body["connections"]["/"] == 1
        if require_env("TEST_DATABASE_URL"):
            assert health_a["checks"]["database"]["backend"] == "postgresql"
            assert health_b["checks"]["database"]["backend"] == "postgresql"

        # A goes down: its own client is told and disconnected, and B's client hears it through Redis.
        server_a.signal()
        await heard_on_a.wait_for("instance_down", from_instance(ids["a"]))
        await heard_on_a.wait_for("disconnect")
        await heard_on_b.wait_for("instance_down", from_instance(ids["a"]))
        assert await asyncio.to_thread(server_a.wait_exit, 10) == 0

        # B and its client are untouched.
        assert on_b.connected
        assert "disconnect" not in heard_on_b.names()
        assert (await on_b.call("ping_server", timeout=10))["instance"] == ids["b"]
        assert (await health(server_b))["connections"]["/"] == 1
        # B never announced its own shutdown.
        assert not [p for name, p in heard_on_b.events if name == "instance_down" and from_instance(ids["b"])(p)]
    finally:
        await close_all(clients)
