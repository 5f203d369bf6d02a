"""Reuse SQLite connections instead of opening one (and its thread) for every query.

`databases` 0.9 gives every task's query a fresh `aiosqlite.connect()` and closes it afterwards: a new OS
thread, a new sqlite3 connection and its page cache, then a join, for each statement run outside an explicit
`database.connection()` block. On the embedded default that is most of the work of a cheap request (py-spy:
~60 % of the worker on `GET /api/me`, ~20 % while relaying phone calls that save transcripts; see
docs/performance.md). `ReusingSQLitePool` keeps up to `max_idle` released connections and hands them out
again; everything else (URL options, the shared in-memory reference, per-task connections) is the library's.

A connection goes back to the idle list only when it is open and outside a transaction (autocommit mode, as
`databases` opens them): a connection released inside a transaction (a cancelled `write_transaction` whose
rollback failed) is closed, never reused. The worker threads are daemons, so a Database that is never
disconnected can't keep the process from exiting; disconnecting closes the idle ones.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiosqlite
from databases import Database
from databases.backends.sqlite import SQLiteBackend, SQLitePool

# More idle connections than the tasks that query at once on one worker would only hold page caches.
MAX_IDLE = 4


class ReusingSQLitePool(SQLitePool):
    def __init__(self, pool: SQLitePool, max_idle: int = MAX_IDLE) -> None:
        # Take over the library pool's state (database path with its URL options, memory reference, options).
        self.__dict__.update(pool.__dict__)
        self.max_idle = max_idle
        self._idle: list[aiosqlite.Connection] = []

    async def acquire(self) -> aiosqlite.Connection:
        while self._idle:
            connection = self._idle.pop()
            if _usable(connection):
                return connection
            await _close(connection)
        connection = aiosqlite.connect(database=self._database, isolation_level=None, **self._options)
        connection._thread.daemon = True  # an idle pooled connection must never hold the interpreter at exit
        await connection.__aenter__()
        return connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        if len(self._idle) < self.max_idle and _usable(connection) and not connection.in_transaction:
            self._idle.append(connection)
            return
        await _close(connection)

    async def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)

    @property
    def idle(self) -> int:
        return len(self._idle)


class ReusingSQLiteBackend(SQLiteBackend):
    """The library's SQLite backend with a reusing pool; disconnect closes the idle connections."""

    _pool: ReusingSQLitePool

    async def disconnect(self) -> None:
        await self._pool.close_idle()
        await super().disconnect()


def reuse_connections(db: Database, max_idle: int = MAX_IDLE) -> Database:
    """Make a SQLite `Database` (not yet connected) reuse its connections; other databases are returned as they are."""
    backend = db._backend
    if isinstance(backend, SQLiteBackend) and not isinstance(backend, ReusingSQLiteBackend):
        backend.__class__ = ReusingSQLiteBackend
        backend._pool = ReusingSQLitePool(backend._pool, max_idle)
    return db


def _usable(connection: aiosqlite.Connection) -> bool:
    return bool(connection._running) and connection._connection is not None and connection._thread.is_alive()


async def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
