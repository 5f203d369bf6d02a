"""Fixtures: databases on both backends, in-process apps, and live hypercorn servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from databases import Database
from quart import Quart
from quart.testing.app import TestApp

from quart_app import create_app
from quart_app.db import migrations
from quart_app.db.database import connect, open_database
from quart_app.settings import Settings
from tests.support.databases import create_database, drop_database, require_env
from tests.support.live_server import LiveServer, base_env


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/test.db"
        return
    base = require_env("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set")
    url = await create_database(base)
    try:
        yield url
    finally:
        await drop_database(base, url)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A connected, fully migrated database on each backend."""
    database = open_database(Settings.from_env({"DATABASE_URL": db_url}).database_url)
    await connect(database)
    await migrations.upgrade(database)
    try:
        yield database
    finally:
        await database.disconnect()


@pytest.fixture
def redis_url() -> str:
    url = require_env("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL not set")
    return url


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Environment for an app on the embedded defaults, then on PostgreSQL with Redis-backed counters."""
    if request.param == "sqlite+memory":
        yield {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/backend.db"}
        return
    base = require_env("TEST_DATABASE_URL")
    redis = require_env("TEST_REDIS_URL")
    if not base or not redis:
        pytest.skip("TEST_DATABASE_URL / TEST_REDIS_URL not set")
    url = await create_database(base)
    try:
        yield {"DATABASE_URL": url, "REDIS_URL": redis}
    finally:
        await drop_database(base, url)


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., object]:
    """`async with make_app(VAR=value) as (app, client)`: a started in-process app (before_serving ran)."""

    @asynccontextmanager
    async def factory(**env: str) -> AsyncIterator[tuple[Quart, object]]:
        values = {"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/app.db", **env}
        app = create_app(Settings.from_env(values))
        # Quart's default 6 s for startup and shutdown is wall-clock: a busy CI machine can pass it while the
        # drain (jobs, calls, sockets) is still finishing normally.
        async with TestApp(app, startup_timeout=30, shutdown_timeout=30) as test_app:
            assert await app.extensions["resources"].database.wait_ready(20), "database did not open"
            yield app, test_app.test_client()

    return factory


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """`start(**env)` runs hypercorn with the real application; every server is stopped afterwards."""
    servers: list[LiveServer] = []

    def start(wait_ready: bool = True, **env: str) -> LiveServer:
        full_env = base_env(tmp_path)
        full_env.update(env)
        server = LiveServer(full_env, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server.start(wait_ready=wait_ready)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory()
