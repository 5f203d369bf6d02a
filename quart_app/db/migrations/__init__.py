"""Ordered, versioned schema migrations.

Each migration is a module `mNNNN_<name>.py` exposing `VERSION`, `NAME` and `statements(dialect)`.
Applied versions are recorded in `schema_migrations`; an upgrade runs only the missing ones, each in
its own transaction, so a release upgrades an existing database without touching its rows.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from databases import Database

from ..database import dialect, now, write_transaction

# Serialises concurrent upgrades (two instances booting at once) on PostgreSQL.
_PG_LOCK_KEY = 0x766F6963  # "voic"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType

    def statements(self, dialect_name: str) -> list[str]:
        return list(self.module.statements(dialect_name))


def all_migrations() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(Migration(module.VERSION, module.NAME, module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


def latest_version() -> int:
    return all_migrations()[-1].version


async def applied_versions(db: Database) -> list[int]:
    if not await _has_table(db, "schema_migrations"):
        return []
    rows = await db.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    return [row[0] for row in rows]


async def current_version(db: Database) -> int:
    versions = await applied_versions(db)
    return versions[-1] if versions else 0


async def pending(db: Database) -> list[Migration]:
    done = set(await applied_versions(db))
    return [m for m in all_migrations() if m.version not in done]


async def upgrade(db: Database, target: int | None = None) -> list[Migration]:
    """Apply every missing migration up to `target` (default: latest). Returns what was applied."""
    name = dialect(db)
    applied: list[Migration] = []
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at "
        + ("DOUBLE PRECISION" if name == "postgresql" else "REAL")
        + " NOT NULL)"
    )
    for migration in all_migrations():
        if target is not None and migration.version > target:
            break
        async with write_transaction(db):
            if name == "postgresql":
                await db.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            exists = await db.fetch_val(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = :v", {"v": migration.version}
            )
            if exists:
                continue
            for statement in migration.statements(name):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)",
                {"v": migration.version, "n": migration.name, "t": now()},
            )
        applied.append(migration)
    return applied


async def existing_tables(db: Database) -> list[str]:
    if dialect(db) == "postgresql":
        rows = await db.fetch_all(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
    else:
        rows = await db.fetch_all(
            # GLOB, not LIKE: the `databases` SQLite backend %-formats every query for its debug log.
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT GLOB 'sqlite_*' "
            "AND name NOT GLOB '*_fts_*' ORDER BY name"
        )
    return [row[0] for row in rows]


async def drop_all(db: Database) -> list[str]:
    """Drop every table this service owns (and only those). Destructive: callers confirm first."""
    owned = {"schema_migrations"}
    for migration in all_migrations():
        owned.update(getattr(migration.module, "TABLES", ()))
    present = [t for t in await existing_tables(db) if t in owned]
    cascade = " CASCADE" if dialect(db) == "postgresql" else ""
    for table in present:
        await db.execute(f"DROP TABLE IF EXISTS {table}{cascade}")
    return present


async def _has_table(db: Database, table: str) -> bool:
    return table in await existing_tables(db)
