"""Running the tests/node/*_check.mjs scripts (the official npm socket.io-client v4) against a live server.

Each script prints one JSON line and exits 0 only if its check passed. Needs `node` and `tests/node/node_modules`
(`scripts/setup_system.sh` runs `npm ci`): missing either skips locally but fails in CI, where these
compatibility checks must always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from tests.support.live_server import ROOT

NODE_DIR = ROOT / "tests" / "node"


def node() -> str:
    """Path to node, after checking the pinned client is installed; skip or (in CI) fail otherwise."""
    found = shutil.which("node")
    problem = None
    if found is None:
        problem = "node is not installed (scripts/setup_system.sh installs it)"
    elif not (NODE_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        problem = "tests/node/node_modules is missing: run `npm ci` in tests/node"
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{problem}; the npm client test may not skip in CI")
        pytest.skip(problem)
    assert found is not None
    return found


async def run_check(script: str, *args: str, within: float) -> tuple[int, dict]:
    """Runs tests/node/`script` with `args`, `within` seconds at most: its exit code and its last JSON line."""
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(NODE_DIR / script),
        *args,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"node client hung for {within:g} s") from None
    lines = stdout.decode().strip().splitlines()
    assert lines, f"no output from the node client; stderr: {stderr.decode()[-2000:]}"
    return proc.returncode or 0, json.loads(lines[-1])
