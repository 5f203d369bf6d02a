"""bench/harness.py keeps servers and load on separate cores: the measured worker runs on SERVER_CORE only,
the load generator (and every child it starts meanwhile) on LOAD_CORE, and the load's affinity comes back after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import harness


def _allowed(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def test_server_worker_runs_on_the_server_core_only(tmp_path: Path) -> None:
    server = harness.Server(
        "bench.peers.bare_socketio:app", harness.clean_env(), tmp_path / "server.log", cores=harness.SERVER_CORE
    )
    with server:
        worker = server.worker_pid()
        if harness.can_pin():
            assert server.cores == harness.SERVER_CORE
            assert _allowed(worker) == {int(harness.SERVER_CORE)}
        else:  # a one-core machine: nothing to keep apart, and the server still runs
            assert server.cores is None
            assert _allowed(worker) == _allowed(0)


def test_load_core_applies_to_this_process_and_its_children_then_is_restored() -> None:
    before = _allowed(0)
    with harness.load_on_load_core() as pinned:
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
            capture_output=True,
            text=True,
            check=True,
        )
        inside = _allowed(0)
    assert pinned == harness.can_pin()
    expected = {int(harness.LOAD_CORE)} if pinned else before
    assert inside == expected
    assert child.stdout.strip() == str(sorted(expected))
    assert _allowed(0) == before


def test_a_server_started_by_the_pinned_load_still_gets_the_server_core(tmp_path: Path) -> None:
    # the real-time benchmarks start their servers from inside load_on_load_core()
    with harness.load_on_load_core() as pinned:
        server = harness.Server(
            "bench.peers.bare_socketio:app", harness.clean_env(), tmp_path / "server.log", cores=harness.SERVER_CORE
        )
        with server:
            worker = server.worker_pid()
            if pinned:
                assert _allowed(worker) == {int(harness.SERVER_CORE)}
                assert _allowed(0) == {int(harness.LOAD_CORE)}


def test_an_unpinned_server_keeps_the_machine() -> None:
    server = harness.Server("bench.peers.bare_socketio:app", harness.clean_env(), Path(os.devnull))
    assert server.cores is None
