"""Throwaway PostgreSQL databases for tests, created from TEST_DATABASE_URL."""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def require_env(name: str) -> str | None:
    """The variable's value; in CI a missing one fails the test instead of skipping it."""
    value = os.environ.get(name)
    if not value and os.environ.get("CI", "").lower() in ("1", "true"):
        raise RuntimeError(f"{name} must be set in CI: Postgres/Redis tests may not skip silently")
    return value


def _plain(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest


async def create_database(base_url: str) -> str:
    """Create an empty database beside the one in `base_url`; returns its URL."""
    name = "vb_test_" + secrets.token_hex(6)
    conn = await asyncpg.connect(_plain(base_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(_plain(base_url))
    return urlunsplit(parts._replace(path="/" + name))


async def drop_database(base_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(_plain(base_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
