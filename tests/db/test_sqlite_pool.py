"""ReusingSQLitePool: released SQLite connections are handed out again, never inside a transaction, and closed
on disconnect; a Database left connected can't keep the interpreter from exiting."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from quart_app.db.database import connect, open_database, write_transaction
from quart_app.db.sqlite_pool import MAX_IDLE, ReusingSQLitePool

ROOT = Path(__file__).resolve().parents[2]


async def test_sequential_queries_reuse_one_connection(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    pool = db._backend._pool
    assert isinstance(pool, ReusingSQLitePool)
    await connect(db)
    try:
        opened: list[object] = []
        original = pool.acquire

        async def counting() -> object:
            connection = await original()
            opened.append(connection)
            return connection

        pool.acquire = counting  # type: ignore[method-assign]
        await db.execute("CREATE TABLE t (n INTEGER)")
        for n in range(20):
            await db.execute("INSERT INTO t (n) VALUES (:n)", {"n": n})
        assert await db.fetch_val("SELECT COUNT(*) FROM t") == 20
        assert len({id(c) for c in opened}) == 1  # 22 statements, one connection
        assert pool.idle == 1
    finally:
        await db.disconnect()
    assert pool.idle == 0


async def test_concurrent_tasks_get_their_own_connections_and_at_most_max_idle_are_kept(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    await connect(db)
    try:
        await db.execute("CREATE TABLE t (n INTEGER)")
        n = MAX_IDLE + 3
        gate = asyncio.Event()
        holding: list[int] = []

        async def reader() -> int:
            async with db.connection() as connection:
                await connection.fetch_val("SELECT 1")  # acquired
                holding.append(1)
                if len(holding) == n:
                    gate.set()
                await gate.wait()  # every task holds its connection at once
                return int(await connection.fetch_val("SELECT COUNT(*) FROM t"))

        assert await asyncio.gather(*(reader() for _ in range(n))) == [0] * n
        assert db._backend._pool.idle == MAX_IDLE
    finally:
        await db.disconnect()


async def test_a_connection_released_inside_a_transaction_is_closed_not_reused(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    pool = db._backend._pool
    await connect(db)
    try:
        await db.execute("CREATE TABLE t (n INTEGER)")
        connection = await pool.acquire()
        await connection.execute("BEGIN IMMEDIATE")
        await connection.execute("INSERT INTO t (n) VALUES (1)")
        idle_before = pool.idle
        await pool.release(connection)  # as if the rollback had failed
        assert pool.idle == idle_before
        assert not connection._running
        # the uncommitted row is gone with the closed connection, and the write lock with it
        async with write_transaction(db):
            await db.execute("INSERT INTO t (n) VALUES (2)")
        assert [r[0] for r in await db.fetch_all("SELECT n FROM t")] == [2]
    finally:
        await db.disconnect()


async def test_failed_write_transaction_rolls_back_and_the_connection_is_reused_clean(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
    await connect(db)
    try:
        await db.execute("CREATE TABLE t (n INTEGER)")
        with pytest.raises(RuntimeError):
            async with write_transaction(db):
                await db.execute("INSERT INTO t (n) VALUES (1)")
                raise RuntimeError("boom")
        await db.execute("INSERT INTO t (n) VALUES (2)")  # autocommit again on the reused connection
        other = open_database(f"sqlite+aiosqlite:///{tmp_path}/pool.db")
        await connect(other)
        try:
            assert [r[0] for r in await other.fetch_all("SELECT n FROM t")] == [2]
        finally:
            await other.disconnect()
    finally:
        await db.disconnect()


def test_a_database_never_disconnected_does_not_hold_the_process(tmp_path: Path) -> None:
    script = (
        "import asyncio\n"
        "from quart_app.db.database import connect, open_database\n"
        "async def main():\n"
        f"    db = open_database('sqlite+aiosqlite:///{tmp_path}/left.db')\n"
        "    await connect(db)\n"
        "    await db.execute('CREATE TABLE t (n INTEGER)')\n"
        "asyncio.run(main())\n"
        "print('exiting')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "exiting"


def test_postgres_databases_are_left_alone() -> None:
    db = open_database("postgresql://postgres@127.0.0.1:5432/test")
    assert not hasattr(db._backend, "_pool") or not isinstance(db._backend._pool, ReusingSQLitePool)
