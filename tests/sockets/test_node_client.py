"""The official npm socket.io-client v4 (what browsers and React Native ship) against a live server.

`tests/node/client_check.mjs` connects in the client's default mode (long-polling, then the upgrade to
websocket) or websocket-only, calls `ping_server` with an ack, disconnects, and prints one JSON line.
Needs `node` and `tests/node/node_modules` (see tests/support/node.py).
"""

from __future__ import annotations

import json

import pytest

from tests.sockets.clients import health, idle
from tests.support.live_server import LiveServer
from tests.support.node import NODE_DIR, node, run_check

pytestmark = pytest.mark.node

SCRIPT = "client_check.mjs"


def test_pinned_client_version_is_exact_and_installed() -> None:
    node()
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["socket.io-client"]
    assert wanted.split(".")[0] == "4" and wanted.replace(".", "").isdigit(), f"pin an exact 4.x: {wanted}"
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/socket.io-client"]["version"] == wanted
    installed = json.loads((NODE_DIR / "node_modules" / "socket.io-client" / "package.json").read_text())
    assert installed["version"] == wanted, "node_modules is stale: run `npm ci` in tests/node"


async def _run_client(url: str, mode: str) -> tuple[int, dict]:
    return await run_check(SCRIPT, url, mode, within=30)


@pytest.mark.parametrize("mode", ["default", "websocket"])
async def test_official_client_connects_acks_and_disconnects(shared_server: LiveServer, mode: str) -> None:
    await idle(shared_server)
    instance = (await health(shared_server))["instance"]

    code, result = await _run_client(shared_server.url, mode)

    assert code == 0 and result["ok"], result
    if mode == "default":
        assert result["initial_transport"] == "polling"
        assert result["upgraded_to"] == "websocket"
    else:
        assert result["initial_transport"] == "websocket"
        assert result["upgraded_to"] is None
    assert result["transport_at_ack"] == "websocket"
    assert result["ack"]["instance"] == instance
    assert isinstance(result["ack"]["server_time"], float | int)
    assert result["disconnect_reason"] == "io client disconnect"
    # The server saw the clean disconnect too.
    await idle(shared_server)


async def test_checker_fails_loudly_when_it_cannot_connect() -> None:
    # Guards the checker itself: a refused connection must give exit code 1 and an error, not a pass.
    code, result = await _run_client("http://127.0.0.1:9", "websocket")
    assert code == 1 and not result["ok"]
    assert result["error"].startswith("connect_error"), result
