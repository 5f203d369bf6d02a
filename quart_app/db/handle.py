"""The process's one database handle, connected and migrated in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from databases import Database

from ..errors import DatabaseNotReady
from ..settings import redact_url
from . import migrations
from .database import DatabaseUnavailable, connect, open_database

log = logging.getLogger(__name__)

RETRY_SECONDS = 3.0


class DatabaseHandle:
    """The process's database: opened (and migrated) in the background, retrying, so an outage at boot
    degrades the features that need it instead of stopping the service.

    `get()` is the connected Database or DatabaseNotReady (503); `wait_ready()` waits for the first open.
    """

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.database = open_database(url, pool_size)
        self.ready = asyncio.Event()
        self.last_error: str | None = None  # why the database is not open yet, for /health
        self._opener: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def get(self) -> Database:
        if not self.ready.is_set() or not self.database.is_connected:
            raise DatabaseNotReady()
        return self.database

    async def wait_ready(self, within: float) -> bool:
        """True once the database is connected and migrated; False if that takes longer than `within` s."""
        try:
            await asyncio.wait_for(self.ready.wait(), within)
        except TimeoutError:
            return False
        return True

    def open_in_background(self) -> None:
        self._opener = asyncio.get_running_loop().create_task(self._open(), name="open-database")

    async def _open(self) -> None:
        """Connect, then migrate; retry both until they succeed. Every failure is logged, never lost."""
        reported: str | None = None
        while True:
            try:
                if not self.database.is_connected:
                    await connect(self.database)
                applied = await migrations.upgrade(self.database)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = str(exc) if isinstance(exc, DatabaseUnavailable) else f"{type(exc).__name__}: {exc}"
                self.last_error = text
                if text != reported:  # each distinct problem once, not every retry
                    if isinstance(exc, DatabaseUnavailable):
                        log.error("%s; retrying every %.0fs", text, RETRY_SECONDS)
                    else:
                        log.exception(
                            "opening database %s failed; retrying every %.0fs", redact_url(self.url), RETRY_SECONDS
                        )
                    reported = text
                await asyncio.sleep(RETRY_SECONDS)
        if applied:
            log.info("database %s migrated: %s", redact_url(self.url), [m.version for m in applied])
        self.last_error = None
        self.ready.set()
        log.info("database ready (%s)", self.backend)

    async def close(self) -> None:
        if self._opener is not None:
            self._opener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._opener
        if self.database.is_connected:
            with contextlib.suppress(Exception):
                await self.database.disconnect()
