"""What was said on a call, one row per turn, written as each turn completes (an abrupt drop loses nothing
already said). Roles: `user` (the caller, as transcribed), `assistant` (what the agent said; `interrupted`
when the caller cut it off, then only the part generated before that), `tool` (a tool call and its result),
`dtmf` (a key press), `system` (instructions the service gave mid-call: wrap up, ...).

Rows are read in call order (`call_ms`, then `seq`), which is also the order a new provider session replays
them in: a handoff or a resumed call can be driven from the database alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import new_id, now
from .tables import call_transcripts

ROLES = ("user", "assistant", "tool", "dtmf", "system")


@dataclass(frozen=True)
class TranscriptItem:
    call_sid: str
    seq: int
    role: str
    text: str
    call_ms: int
    at: float
    item_id: str | None = None
    interrupted: bool = False
    latency_ms: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "role": self.role,
            "text": self.text,
            "call_ms": self.call_ms,
            "at": self.at,
            "interrupted": self.interrupted,
            "latency_ms": self.latency_ms,
        }


async def add_item(db: Database, item: TranscriptItem) -> None:
    values = {**item.__dict__, "interrupted": 1 if item.interrupted else 0}
    await db.execute(call_transcripts.insert().values(id=new_id("ctr"), **values))


async def items_of(db: Database, call_sid: str, *, limit: int = 10_000) -> list[TranscriptItem]:
    rows = await db.fetch_all(
        sa.select(call_transcripts)
        .where(call_transcripts.c.call_sid == call_sid)
        .order_by(call_transcripts.c.call_ms, call_transcripts.c.seq)
        .limit(limit)
    )
    items = []
    for row in rows:
        data = dict(row._mapping)
        data.pop("id", None)
        data["interrupted"] = bool(data["interrupted"])
        items.append(TranscriptItem(**data))
    return items


async def next_seq(db: Database, call_sid: str) -> int:
    """The first free `seq` of a call (a resumed call continues numbering where it stopped)."""
    value = await db.fetch_val(
        sa.select(sa.func.max(call_transcripts.c.seq)).where(call_transcripts.c.call_sid == call_sid)
    )
    return 0 if value is None else int(value) + 1


def stamp() -> float:
    return now()
