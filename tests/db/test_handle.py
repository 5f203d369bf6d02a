"""The database handle opens in the background and never loses a failure: it logs it, keeps it for
/health, and retries until the database is connected and migrated."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from databases import Database

from quart_app.db import handle as handle_module
from quart_app.db.handle import DatabaseHandle
from quart_app.errors import DatabaseNotReady


async def test_a_failing_migration_is_logged_kept_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(handle_module, "RETRY_SECONDS", 0.01)
    real_upgrade = handle_module.migrations.upgrade
    attempts = 0

    async def flaky_upgrade(db: Database) -> list[object]:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise RuntimeError("migration versions must be 1..N without gaps")
        return await real_upgrade(db)

    monkeypatch.setattr(handle_module.migrations, "upgrade", flaky_upgrade)
    database = DatabaseHandle(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    with pytest.raises(DatabaseNotReady):
        database.get()
    caplog.set_level(logging.ERROR, logger="quart_app.db.handle")
    database.open_in_background()
    try:
        assert await database.wait_ready(30)
        assert attempts == 3
        assert database.last_error is None
        assert await database.get().fetch_val("SELECT 1") == 1
        failures = [r for r in caplog.records if "failed" in r.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info is not None  # logged once, with its traceback
    finally:
        await database.close()
