"""Opening the database: asyncpg pool for PostgreSQL, aiosqlite file for the embedded default."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from databases import Database

from ..settings import redact_url


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message names the host, never the password."""


def open_database(url: str, pool_size: int = 10) -> Database:
    """Build (not connect) a Database for `url`, in its async-driver form."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path.split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)
        return Database(url)
    return Database(url, min_size=1, max_size=pool_size, command_timeout=30)


async def connect(db: Database) -> None:
    try:
        await db.connect()
        if dialect(db) == "sqlite":
            # WAL lets the dashboard read while a transcription is written; busy_timeout rides out short locks.
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA busy_timeout=5000")
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
    Taking the lock at BEGIN waits politely instead. PostgreSQL needs nothing special.
    """
    if dialect(db) != "sqlite":
        async with db.transaction():
            yield
        return
    async with db.connection() as connection:
        await connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
        await connection.execute("COMMIT")


def new_id(prefix: str) -> str:
    """Sortable-enough, collision-free ids that say what they identify (usr_..., key_...)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> float:
    return time.time()
