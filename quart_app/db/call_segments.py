"""A call's segments and the instances relaying calls (m0009, #22: a deploy or a crash never cuts a live call).

- `call_segments`: one row per Media Stream of a call, numbered from 0 (`seq`): which instance relayed it, its
  stream SID and URL, when it started and ended, and why it ended (`twilio_stop`, `moved`, `lost`,
  `drain_limit`, ...). A call moved to another instance keeps its one `calls` row and gains a segment. An open
  segment (`ended_at` NULL) is a stream some instance relays right now.
- `call_instances`: each instance's heartbeat (`state` ready | draining, `expires_at`). A call moves only to a
  ready instance; an open segment whose instance's heartbeat expired was lost with its instance, and
  `claim_lost` lets exactly one other instance take it over (a conditional UPDATE: the lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database
from sqlalchemy.dialects import postgresql, sqlite

from .database import dialect, now
from .tables import metadata

call_segments = sa.Table(
    "call_segments",
    metadata,
    sa.Column("call_sid", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("instance_id", sa.Text, nullable=False),
    sa.Column("stream_sid", sa.Text, nullable=False, unique=True),
    sa.Column("stream_url", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("end_reason", sa.Text),
    sa.Column("recovered_by", sa.Text),
)

call_instances = sa.Table(
    "call_instances",
    metadata,
    sa.Column("instance_id", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

READY = "ready"
DRAINING = "draining"
MAX_SEQ_ATTEMPTS = 5


@dataclass(frozen=True)
class Segment:
    call_sid: str
    seq: int
    instance_id: str
    stream_sid: str
    stream_url: str | None
    started_at: float
    ended_at: float | None
    end_reason: str | None
    recovered_by: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "instance": self.instance_id,
            "stream_sid": self.stream_sid,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "recovered_by": self.recovered_by,
        }


def _segment(row: Any) -> Segment:
    return Segment(**dict(row._mapping))


# ----- segments ------------------------------------------------------------------------------------------------


async def segment_started(
    db: Database, *, call_sid: str, instance_id: str, stream_sid: str, stream_url: str | None, started_at: float
) -> int:
    """A stream of the call started on `instance_id`: the next segment. Returns its `seq` (idempotent per stream)."""
    for _ in range(MAX_SEQ_ATTEMPTS):
        existing = await db.fetch_val(sa.select(call_segments.c.seq).where(call_segments.c.stream_sid == stream_sid))
        if existing is not None:
            return int(existing)
        seq = await db.fetch_val(
            sa.select(sa.func.coalesce(sa.func.max(call_segments.c.seq) + 1, 0)).where(
                call_segments.c.call_sid == call_sid
            )
        )
        insert = (postgresql.insert if dialect(db) == "postgresql" else sqlite.insert)(call_segments).values(
            call_sid=call_sid,
            seq=int(seq),
            instance_id=instance_id,
            stream_sid=stream_sid,
            stream_url=stream_url,
            started_at=started_at,
        )
        # Two streams of one call starting at once take the same seq: the second retries with the next one.
        await db.execute(insert.on_conflict_do_nothing())
        stored = await db.fetch_val(sa.select(call_segments.c.seq).where(call_segments.c.stream_sid == stream_sid))
        if stored is not None:
            return int(stored)
    raise RuntimeError(f"call {call_sid}: could not number the segment of stream {stream_sid}")


async def segment_ended(db: Database, *, stream_sid: str, end_reason: str, ended_at: float) -> bool:
    """The stream ended; a segment already ended (e.g. claimed as lost) keeps its first reason. True if ended here."""
    c = call_segments.c
    row = await db.fetch_one(
        call_segments.update()
        .where((c.stream_sid == stream_sid) & c.ended_at.is_(None))
        .values(ended_at=ended_at, end_reason=end_reason)
        .returning(c.seq)
    )
    return row is not None


async def segments_of(db: Database, call_sid: str) -> list[Segment]:
    rows = await db.fetch_all(
        sa.select(call_segments).where(call_segments.c.call_sid == call_sid).order_by(call_segments.c.seq)
    )
    return [_segment(r) for r in rows]


async def lost_segments(
    db: Database, *, at: float | None = None, limit: int = 100, exclude: str | None = None
) -> list[Segment]:
    """Open segments whose instance has no live heartbeat: their instance died while relaying them (`exclude`:
    an instance that knows it is alive, whatever its heartbeat says)."""
    stamp = now() if at is None else at
    s, i = call_segments.c, call_instances.c
    alive = sa.select(i.instance_id).where(i.expires_at > stamp)
    where = s.ended_at.is_(None) & s.instance_id.not_in(alive)
    if exclude is not None:
        where = where & (s.instance_id != exclude)
    rows = await db.fetch_all(sa.select(call_segments).where(where).order_by(s.started_at).limit(limit))
    return [_segment(r) for r in rows]


async def open_segments_of(db: Database, instance_id: str, *, limit: int = 1000) -> list[Segment]:
    """The instance's open segments (a process starting under the id of one that died finds its lost calls)."""
    s = call_segments.c
    rows = await db.fetch_all(
        sa.select(call_segments)
        .where(s.ended_at.is_(None) & (s.instance_id == instance_id))
        .order_by(s.started_at)
        .limit(limit)
    )
    return [_segment(r) for r in rows]


async def open_segment(db: Database, call_sid: str) -> Segment | None:
    """The call's open segment with the highest seq (the stream relaying it now, or the one lost), if any."""
    c = call_segments.c
    row = await db.fetch_one(
        sa.select(call_segments).where((c.call_sid == call_sid) & c.ended_at.is_(None)).order_by(c.seq.desc()).limit(1)
    )
    return None if row is None else _segment(row)


async def claim_lost(db: Database, segment: Segment, *, by: str, at: float | None = None) -> bool:
    """The lease on a lost call: end its open segment as `lost`, recovered by `by`. Exactly one claimant gets
    True (a conditional UPDATE, atomic on both backends); everyone else finds it already ended."""
    c = call_segments.c
    row = await db.fetch_one(
        call_segments.update()
        .where((c.call_sid == segment.call_sid) & (c.seq == segment.seq) & c.ended_at.is_(None))
        .values(ended_at=now() if at is None else at, end_reason="lost", recovered_by=by)
        .returning(c.seq)
    )
    return row is not None


# ----- instances -----------------------------------------------------------------------------------------------


async def heartbeat(db: Database, instance_id: str, state: str, expires_in: float) -> None:
    stamp = now()
    values = {"instance_id": instance_id, "state": state, "heartbeat_at": stamp, "expires_at": stamp + expires_in}
    insert = (postgresql.insert if dialect(db) == "postgresql" else sqlite.insert)(call_instances).values(**values)
    await db.execute(
        insert.on_conflict_do_update(
            index_elements=[call_instances.c.instance_id],
            set_={k: insert.excluded[k] for k in ("state", "heartbeat_at", "expires_at")},
        )
    )


async def instance_gone(db: Database, instance_id: str) -> None:
    """The instance stopped cleanly: it relays nothing any more."""
    await db.execute(call_instances.delete().where(call_instances.c.instance_id == instance_id))


async def ready_peers(db: Database, instance_id: str, *, at: float | None = None) -> list[str]:
    """Other instances with a live heartbeat that take new calls."""
    i = call_instances.c
    stamp = now() if at is None else at
    rows = await db.fetch_all(
        sa.select(i.instance_id)
        .where((i.instance_id != instance_id) & (i.state == READY) & (i.expires_at > stamp))
        .order_by(i.instance_id)
    )
    return [r[0] for r in rows]


async def instance_alive(db: Database, instance_id: str, *, at: float | None = None) -> bool:
    i = call_instances.c
    stamp = now() if at is None else at
    value = await db.fetch_val(
        sa.select(sa.func.count()).where((i.instance_id == instance_id) & (i.expires_at > stamp))
    )
    return bool(value)
