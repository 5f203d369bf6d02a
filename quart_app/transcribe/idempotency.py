"""Idempotency-Key for paid requests: a client retrying after a crash gets the first answer, billed once.

`begin` claims the caller's key for a request fingerprint or answers with what to do instead: replay the
stored answer, 422 `idempotency_key_reused` (same key, different request), 409 `idempotency_key_in_progress`
(the first request is still running). The claimant stores its answer with `Claim.complete` inside the
transaction that stores and bills the result, or gives the key back with `release` when it fails.
A key is remembered for WINDOW_S; a claim whose request died without an answer lapses after LEASE_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from databases import Database

from ..db import idempotency as store
from ..db.database import now
from ..errors import APIError

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replay"
MAX_KEY_CHARS = 255
WINDOW_S = 24 * 3600.0
# A sync transcription finishes well within this (provider timeouts and retries included); a claim older
# than that belonged to a process that died, and the key is free again.
LEASE_S = 600.0
_BLOCK = 1024 * 1024


def parse_key(value: str | None) -> str | None:
    """The Idempotency-Key header's value, None when absent; 400 unless 1-255 printable ASCII characters."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_CHARS or not all(" " <= c <= "~" for c in value):
        raise APIError(
            400,
            "validation_error",
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters.",
            extra={"fields": {HEADER: "1-255 printable ASCII characters"}},
        )
    return value


def fingerprint(parts: Iterable[str], stream: IO[bytes] | None = None) -> str:
    """SHA-256 over the request's identifying parts and the uploaded file's bytes (blocking: run in a thread)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    if stream is not None:
        stream.seek(0)
        while block := stream.read(_BLOCK):
            digest.update(block)
        stream.seek(0)
    return digest.hexdigest()


@dataclass(frozen=True)
class Replay:
    """The stored answer of the request that first used the key."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """This request owns the key until it completes or releases it."""

    user_id: str
    key: str
    token: str

    async def complete(self, db: Database, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        await store.complete(db, self.user_id, self.key, self.token, status_code=status, body=body, headers=headers)

    async def release(self, db: Database) -> None:
        """Give the key back (the request failed). Shielded: a disconnecting client must not leave it held."""
        with contextlib.suppress(Exception):
            await asyncio.shield(store.release(db, self.user_id, self.key, self.token))


async def known(db: Database, user_id: str, key: str) -> bool:
    """Whether the key is already in use within its window (the request may be a replay)."""
    record = await store.get(db, user_id, key)
    return record is not None and record.created_at >= now() - WINDOW_S


async def begin(db: Database, user_id: str, key: str, request_fingerprint: str) -> Claim | Replay:
    """Claim `key` for this request, or say what to answer instead (Replay, or APIError 409/422)."""
    token = secrets.token_hex(16)
    record = await store.claim(db, user_id, key, request_fingerprint, token)
    if record.token == token:
        return Claim(user_id, key, token)
    stamp = now()
    expired = record.created_at < stamp - WINDOW_S
    lapsed = record.state == store.IN_PROGRESS and record.updated_at < stamp - LEASE_S
    if not expired and record.fingerprint != request_fingerprint:
        raise APIError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was already used for a different request; use a new key for a new request.",
        )
    if expired or lapsed:
        taken = await store.take_over(db, record, request_fingerprint, token)
        if taken is not None and taken.token == token:
            return Claim(user_id, key, token)
        record = taken or record
    if record.state == store.DONE and record.status_code is not None:
        return Replay(record.status_code, record.body, record.headers)
    raise APIError(
        409,
        "idempotency_key_in_progress",
        f"A request with this {HEADER} is still being processed; retry shortly to get its result.",
        headers={"Retry-After": "2"},
    )
