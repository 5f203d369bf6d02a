"""The assistant's conversation memory: each user's last chat messages, in order, bounded.

A message is stored whole (role, content, tool_calls, tool_call_id) as JSON, so it replays exactly as it was
sent to the model. The window kept always starts at a user message: a tool result is never kept without the
assistant message that asked for it, and an assistant tool call never without its results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import now, write_transaction
from .tables import assistant_messages


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    role: str
    message: dict[str, Any]
    created_at: float


def _stored(row: Any) -> StoredMessage:
    data = row._mapping
    return StoredMessage(int(data["seq"]), str(data["role"]), json.loads(data["content"]), float(data["created_at"]))


def complete_window(messages: list[StoredMessage]) -> list[StoredMessage]:
    """`messages` from their first user message on (empty when there is none)."""
    for index, message in enumerate(messages):
        if message.role == "user":
            return messages[index:]
    return []


async def recent_messages(db: Database, user_id: str, limit: int) -> list[StoredMessage]:
    """At most `limit` of the user's latest messages, oldest first, starting at a user message."""
    rows = await db.fetch_all(
        sa.select(assistant_messages)
        .where(assistant_messages.c.user_id == user_id)
        .order_by(assistant_messages.c.seq.desc())
        .limit(limit)
    )
    return complete_window([_stored(row) for row in reversed(rows)])


async def append_messages(db: Database, user_id: str, messages: list[dict[str, Any]], keep: int) -> None:
    """Add one turn's messages (the first one should be the user's), then forget what falls out of the window
    of the latest `keep` messages, cutting only at a user message."""
    if not messages:
        return
    stamp = now()
    async with write_transaction(db):
        last = await db.fetch_val(
            sa.select(sa.func.max(assistant_messages.c.seq)).where(assistant_messages.c.user_id == user_id)
        )
        seq = int(last or 0)
        for message in messages:
            seq += 1
            await db.execute(
                assistant_messages.insert().values(
                    user_id=user_id,
                    seq=seq,
                    role=str(message.get("role", "")),
                    content=json.dumps(message, separators=(",", ":"), ensure_ascii=False),
                    created_at=stamp,
                )
            )
        kept = await recent_messages(db, user_id, keep)
        oldest = kept[0].seq if kept else seq + 1
        await db.execute(
            assistant_messages.delete().where(
                assistant_messages.c.user_id == user_id, assistant_messages.c.seq < oldest
            )
        )


async def count_messages(db: Database, user_id: str) -> int:
    return int(
        await db.fetch_val(
            sa.select(sa.func.count()).select_from(assistant_messages).where(assistant_messages.c.user_id == user_id)
        )
    )


async def forget(db: Database, user_id: str) -> None:
    await db.execute(assistant_messages.delete().where(assistant_messages.c.user_id == user_id))
