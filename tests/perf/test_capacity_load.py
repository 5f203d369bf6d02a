"""bench/_sio_load.py, the capacity benchmark's raw Socket.IO load generator, against the bare peer.

Behaviour only: every client connects through the hand-written Engine.IO/Socket.IO handshake, every echo is
answered, every client gets every broadcast, and the figures the benchmark reads are there. No timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import harness

ROOT = Path(__file__).resolve().parents[2]


def test_load_generator_connects_echoes_and_counts_every_broadcast(tmp_path: Path) -> None:
    with harness.Server(
        "bench.peers.bare_socketio:app", harness.clean_env(), tmp_path / "server.log", ready_path="/health/live"
    ) as server:
        pid = server.worker_pid()
        config = {
            "host": "127.0.0.1",
            "port": server.port,
            "pids": [pid],
            "levels": [5, 20],
            "echo_event": "echo",
            "echo_payload": {"seq": 1, "text": "héllo"},
            "echo_rate": 200,
            "echo_seconds": 0.5,
            "broadcasts": 2,
            "settle_s": 0.1,
            "idle_s": 0.1,
        }
        out = subprocess.run(
            [sys.executable, "bench/_sio_load.py", json.dumps(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    levels = json.loads(out.stdout)["levels"]
    assert [lv["clients"] for lv in levels] == [5, 20]
    for lv in levels:
        assert lv["failed"] == 0 and lv["errors"] == {}
        assert lv["echo_answered"] == lv["echo_sent"] == 100
        assert lv["bcast_received"] == lv["bcast_expected"] == lv["clients"]
        for key in ("rss_per_conn", "server_cpu_idle", "echo_p50_ms", "server_cpu_per_echo_ms", "bcast_last_ms"):
            assert key in lv
