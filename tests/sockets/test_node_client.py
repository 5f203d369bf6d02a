"""The official npm socket.io-client v4 (what browsers and React Native ship) against a live server.

`tests/node/client_check.mjs` connects in the client's default mode (long-polling, then the upgrade to
websocket) or websocket-only, calls `ping_server` with an ack, disconnects, and prints one JSON line.
Needs `node` and `tests/node/node_modules` (`scripts/setup_system.sh` runs `npm ci`): missing either
skips locally but fails in CI, where this compatibility check must always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.sockets.clients import health, idle
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "client_check.mjs"


def _node() -> str:
    """Path to node, after checking the pinned client is installed; skip or (in CI) fail otherwise."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed (scripts/setup_system.sh installs it)"
    elif not (NODE_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        problem = "tests/node/node_modules is missing: run `npm ci` in tests/node"
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{problem}; the npm client test may not skip in CI")
        pytest.skip(problem)
    assert node is not None
    return node


def test_pinned_client_version_is_exact_and_installed() -> None:
    _node()
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["socket.io-client"]
    assert wanted.split(".")[0] == "4" and wanted.replace(".", "").isdigit(), f"pin an exact 4.x: {wanted}"
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/socket.io-client"]["version"] == wanted
    installed = json.loads((NODE_DIR / "node_modules" / "socket.io-client" / "package.json").read_text())
    assert installed["version"] == wanted, "node_modules is stale: run `npm ci` in tests/node"


async def _run_client(url: str, mode: str) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(
        _node(),
        str(SCRIPT),
        url,
        mode,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("node client hung for 30 s") from None
    lines = stdout.decode().strip().splitlines()
    assert lines, f"no output from the node client; stderr: {stderr.decode()[-2000:]}"
    return proc.returncode, json.loads(lines[-1])


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
