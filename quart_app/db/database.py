"""Opening the database: asyncpg pool for PostgreSQL, aiosqlite file for the embedded default."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from databases import Database

from ..settings import redact_url
from .sqlite_pool import reuse_connections

# Every SQLite connection waits this long for another connection's write lock (sqlite3's busy timeout),
# longer than any write of ours takes, so a busy minute queues writes instead of failing them.
SQLITE_BUSY_TIMEOUT_S = 30.0

# One writer per process and SQLite database: write transactions queue on this lock in the event loop
# instead of each holding a connection (and a thread) while SQLite's busy handler sleeps and retries.
_sqlite_writers: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message names the host, never the password."""


def open_database(url: str, pool_size: int = 10) -> Database:
    """Build (not connect) a Database for `url`, in its async-driver form."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path.split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)
        # databases opens an aiosqlite connection per task; `timeout` is each one's busy timeout. Released
        # connections are kept for the next task instead of being closed (sqlite_pool.py).
        return reuse_connections(Database(url, timeout=SQLITE_BUSY_TIMEOUT_S))
    return Database(url, min_size=1, max_size=pool_size, command_timeout=30)


async def connect(db: Database) -> None:
    try:
        await db.connect()
        if dialect(db) == "sqlite":
            # WAL (kept in the file) lets readers go on while a transcription is written.
            await db.execute("PRAGMA journal_mode=WAL")
        await db.fetch_val("SELECT 1")
    except Exception as exc:
        try:
            await db.disconnect()
        except Exception:
            pass
        raise DatabaseUnavailable(f"cannot reach database {redact_url(str(db.url))}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def dialect(db: Database) -> str:
    return "sqlite" if db.url.dialect == "sqlite" else "postgresql"


@contextlib.asynccontextmanager
async def write_transaction(db: Database) -> AsyncIterator[None]:
    """A transaction that will write. On SQLite it takes the write lock up front (BEGIN IMMEDIATE).

    A deferred BEGIN reads a WAL snapshot first; if another connection commits before this one writes,
    SQLite answers SQLITE_BUSY_SNAPSHOT ("database is locked") at once, without the busy timeout.
    Taking the lock at BEGIN waits politely instead, and within this process write transactions take
    turns on one asyncio lock first. PostgreSQL needs nothing special.
    """
    if dialect(db) != "sqlite":
        async with db.transaction():
            yield
        return
    async with _sqlite_writer(db), db.connection() as connection:
        await connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
        await connection.execute("COMMIT")


def _sqlite_writer(db: Database) -> asyncio.Lock:
    lock = _sqlite_writers.get(db)
    if lock is None:
        lock = _sqlite_writers[db] = asyncio.Lock()
    return lock


def is_transient(exc: BaseException) -> bool:
    """A storage error worth retrying: SQLite busy/locked, a dropped or refused database connection."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    name = type(exc).__name__
    # asyncpg's connection-level failures, by name so this leaf stays free of driver imports.
    return name in {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "PostgresConnectionError",
        "ConnectionFailureError",
    }


def new_id(prefix: str) -> str:
    """Sortable-enough, collision-free ids that say what they identify (usr_..., key_...)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> float:
    return time.time()
