"""Module-scoped live servers for the Socket.IO tests: starting hypercorn costs 1-2 s on a busy CI box,
so tests that only need a server share one and leave it as they found it (no clients connected)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_server import LiveServer, base_env


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> LiveServer:
    tmp = tmp_path_factory.mktemp(name)
    full_env = base_env(tmp)
    full_env.update(env)
    return LiveServer(full_env, tmp / "server.log").start()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Default settings: no CORS_ORIGINS (same-origin only), 1 MB Socket.IO buffer."""
    server = _start(tmp_path_factory, "sio-default")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def restricted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One allowed origin, a 2 KiB Socket.IO buffer, and 1 s heartbeats (so sessions whose connection
    died without a clean close are reaped within ~2 s instead of 45 s)."""
    server = _start(
        tmp_path_factory,
        "sio-restricted",
        CORS_ORIGINS="https://app.example",
        SOCKETIO_MAX_HTTP_BUFFER_SIZE="2048",
        SOCKETIO_PING_INTERVAL="1",
        SOCKETIO_PING_TIMEOUT="1",
    )
    yield server
    server.stop()
