"""Opening the database: asyncpg pool for PostgreSQL, aiosqlite file for the embedded default."""

from __future__ import annotations

import time
import uuid
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


def new_id(prefix: str) -> str:
    """Sortable-enough, collision-free ids that say what they identify (usr_..., key_...)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> float:
    return time.time()
