"""Billing: a paid result and its usage row commit together, once; transient storage errors are retried."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest
from databases import Database

from quart_app import billing
from quart_app.billing import Billing
from quart_app.db import transcriptions, usage
from quart_app.db.handle import DatabaseHandle
from quart_app.providers.results import TranscriptResult
from quart_app.settings import DEFAULT_PRICES, Settings


@pytest.fixture
async def handle(db_url: str) -> AsyncIterator[DatabaseHandle]:
    database = DatabaseHandle(Settings.from_env({"DATABASE_URL": db_url}).database_url)
    database.open_in_background()
    assert await database.wait_ready(30)
    try:
        yield database
    finally:
        await database.close()


RESULT = TranscriptResult(text="hello there", language="en", duration_s=30.0, model="nova-3")


async def _rows(db: Database) -> tuple[int, int]:
    return (
        len(await db.fetch_all(transcriptions.transcriptions.select())),
        len(await db.fetch_all(usage.usage_logs.select())),
    )


async def test_transient_errors_are_retried_and_billed_once(
    handle: DatabaseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(billing, "RETRY_DELAYS_S", (0.01, 0.01, 0.01))
    ledger = Billing(handle, DEFAULT_PRICES)
    charge = ledger.transcription_charge("deepgram", endpoint="/t", request_id="r1", duration_ms=5, audio_seconds=30)
    failures = iter([sqlite3.OperationalError("database is locked"), ConnectionResetError("connection reset")])

    async def flaky_then_done(db: Database, record: transcriptions.Transcription) -> None:
        error = next(failures, None)
        if error is not None:
            raise error  # inside the transaction: the transcription row written before it rolls back

    record = await ledger.save_transcription(
        "usr_1", "deepgram", RESULT, charge, source="upload", filename=None, then=flaky_then_done
    )
    assert record.transcript == "hello there"
    assert await _rows(handle.get()) == (1, 1)
    row = (await handle.get().fetch_all(usage.usage_logs.select()))[0]
    assert row["cost_usd"] == pytest.approx(0.5 * DEFAULT_PRICES["deepgram_per_minute"])


async def test_a_real_error_is_not_retried_and_nothing_is_stored(
    handle: DatabaseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(billing, "RETRY_DELAYS_S", (0.01,) * 5)
    ledger = Billing(handle, DEFAULT_PRICES)
    charge = ledger.transcription_charge("openai", endpoint="/t", request_id="r2", duration_ms=5, audio_seconds=1)
    calls = 0

    async def broken(db: Database, record: transcriptions.Transcription) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not a blip")

    with pytest.raises(ValueError):
        await ledger.save_transcription("usr_1", "openai", RESULT, charge, source="upload", filename=None, then=broken)
    assert calls == 1
    assert await _rows(handle.get()) == (0, 0)


async def test_retries_give_up_after_the_last_delay(handle: DatabaseHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(billing, "RETRY_DELAYS_S", (0.01, 0.01))
    ledger = Billing(handle, DEFAULT_PRICES)
    charge = ledger.translation_charge("openai", endpoint="/t", request_id="r3", duration_ms=5, characters=10)
    attempts = 0

    async def always_locked(db: Database) -> None:
        nonlocal attempts
        attempts += 1
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        await ledger.commit("usr_1", charge, always_locked)
    assert attempts == 3
    assert await _rows(handle.get()) == (0, 0)
