"""The drain and the broadcast fan-out rely on private hypercorn / wsproto / python-socketio / python-engineio
internals: fail loudly if an upgrade removed one (see quart_app/process/internals.py)."""

from typing import Any

import pytest
from databases.backends.sqlite import SQLitePool
from hypercorn.protocol.ws_stream import WSStream

from quart_app.process import internals
from quart_app.sockets import fanout


def test_every_private_internal_the_drain_and_the_fanout_use_is_still_there() -> None:
    assert internals.check() == []


def test_a_vanished_internal_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(WSStream, "app_send")
    problems = internals.fanout_problems()
    assert any("app_send" in p for p in problems), problems


def test_a_raw_path_that_no_longer_finds_hypercorn_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def nothing(asgi_send: Any) -> None:
        return None

    monkeypatch.setattr(fanout, "hypercorn_raw", nothing)
    problems = internals.fanout_problems()
    assert len(problems) >= 1 and all("finds no (WSStream, TCPServer, transport)" in p for p in problems), problems


def test_a_sqlite_pool_internal_that_vanished_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # the pool reuses connections through databases' SQLitePool.acquire/release
    monkeypatch.delattr(SQLitePool, "release")
    problems = internals.sqlite_pool_problems()
    assert problems == ["databases' SQLitePool no longer has acquire() and release()"], problems
