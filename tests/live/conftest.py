"""Fixtures for the live transcription tests: a FakeDeepgram in the test's loop, and a log watch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from fakes import FakeDeepgram, run_fake


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if anything (our code, hypercorn, asyncio) logged an error or a traceback meanwhile."""
    hypercorn_errors = logging.getLogger("hypercorn.error")  # does not propagate to root: watch it directly
    hypercorn_errors.addHandler(caplog.handler)
    try:
        yield
    finally:
        hypercorn_errors.removeHandler(caplog.handler)
    bad = [
        r
        for r in caplog.get_records("call")
        if (r.exc_info or r.levelno >= logging.ERROR) and not _earlier_loop_garbage(r)
    ]
    assert not bad, "\n".join(f"{r.name}: {r.getMessage()}" for r in bad)


def _earlier_loop_garbage(record: logging.LogRecord) -> bool:
    """An HTTP client left by an earlier test, collected now: its close task fails on that test's closed loop.
    It says nothing about this test, and which test collects it depends on the garbage collector's timing."""
    message = record.getMessage()
    return record.name == "asyncio" and "Event loop is closed" in message and "aclose()" in message
