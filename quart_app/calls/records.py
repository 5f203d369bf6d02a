"""A call's record in the database, written behind the relay: the hot path never waits for storage.

Each call has one writer task that applies its writes in order (call row, transcript items as each turn
completes, token usage per response, the end). A write that fails (database down) is logged and dropped; the
call goes on, and its in-memory transcript still drives any handoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from databases import Database

from ..db import call_segments, call_transcripts, calls
from ..db.call_transcripts import TranscriptItem
from ..db.handle import DatabaseHandle
from .speech import Usage

log = logging.getLogger(__name__)

Write = Callable[[Database], Awaitable[None]]
MAX_QUEUED_WRITES = 10_000


def segment_reason(reason: str) -> str:
    """Why a segment ended, from why the call's session on it ended: Twilio's `stop` is `twilio_stop`."""
    return "twilio_stop" if reason == "caller_hangup" else reason


class CallRecorder:
    def __init__(self, database: DatabaseHandle, call_sid: str, instance_id: str = "local") -> None:
        self.database = database
        self.call_sid = call_sid
        self.instance_id = instance_id
        self.stream_sid: str | None = None
        self._queue: asyncio.Queue[tuple[str, Write] | None] = asyncio.Queue(MAX_QUEUED_WRITES)
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def _submit(self, what: str, write: Write) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"call-record-{self.call_sid}")
        try:
            self._queue.put_nowait((what, write))
        except asyncio.QueueFull:
            self.failures += 1
            log.warning("call %s: record queue full, dropped %s", self.call_sid, what)

    async def _run(self) -> None:
        while True:
            entry = await self._queue.get()
            if entry is None:
                return
            what, write = entry
            try:
                await write(self.database.get())
            except Exception as exc:  # noqa: BLE001 - storage trouble must not end the call
                self.failures += 1
                log.warning("call %s: could not store %s: %s", self.call_sid, what, exc)

    # ----- what a call records ------------------------------------------------------------------------

    def started(
        self,
        *,
        stream_sid: str,
        tenant_id: str | None,
        from_number: str | None,
        to_number: str | None,
        account_sid: str | None,
        started_at: float,
        stream_url: str | None = None,
    ) -> None:
        self.stream_sid = stream_sid

        async def write(db: Database) -> None:
            await calls.relay_started(
                db,
                call_sid=self.call_sid,
                stream_sid=stream_sid,
                tenant_id=tenant_id,
                from_number=from_number,
                to_number=to_number,
                account_sid=account_sid,
                started_at=started_at,
            )
            await call_segments.segment_started(
                db,
                call_sid=self.call_sid,
                instance_id=self.instance_id,
                stream_sid=stream_sid,
                stream_url=stream_url,
                started_at=started_at,
            )

        self._submit("start", write)

    def session_opened(self) -> None:
        async def write(db: Database) -> None:
            await calls.provider_session_opened(db, self.call_sid)

        self._submit("session", write)

    def transcript(self, item: TranscriptItem) -> None:
        async def write(db: Database) -> None:
            await call_transcripts.add_item(db, item)

        self._submit(f"transcript item {item.seq}", write)

    def usage(self, usage: Usage) -> None:
        tokens = calls.TokenUsage(
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            audio_input_tokens=usage.audio_input_tokens,
            audio_output_tokens=usage.audio_output_tokens,
        )

        async def write(db: Database) -> None:
            await calls.add_usage(db, self.call_sid, tokens)

        self._submit("usage", write)

    def ended(self, reason: str, ended_at: float) -> None:
        stream_sid = self.stream_sid

        async def write(db: Database) -> None:
            if stream_sid is not None:
                await call_segments.segment_ended(
                    db, stream_sid=stream_sid, end_reason=segment_reason(reason), ended_at=ended_at
                )
            await calls.relay_ended(db, self.call_sid, end_reason=reason, ended_at=ended_at, stream_sid=stream_sid)

        self._submit("end", write)

    async def close(self, within: float = 5.0) -> None:
        """Apply what is queued (at most `within` seconds), then stop the writer."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within)
        except TimeoutError:
            log.warning("call %s: %d record writes not stored in time", self.call_sid, self._queue.qsize())
            self._task.cancel()


async def load_transcript(database: DatabaseHandle, call_sid: str) -> list[TranscriptItem]:
    """A stored call's transcript, to resume it in a new session (e.g. on another instance)."""
    return await call_transcripts.items_of(database.get(), call_sid)
