"""The live-streams feature: every live transcription session of this process, their limits, their drain.

    streams = LiveStreams(settings, database, billing, counters)     # a Feature: start / drain / stop
    session = streams.open_session(user_id=..., sender=..., default_language=..., endpoint=...)

Admission to `start` a stream, in order: not draining, Deepgram configured, database reachable, the user's
`STREAM_STARTS_PER_MINUTE` (counted in Redis when configured, so across instances), and at most
`STREAM_MAX_PER_USER` streams of that user at once in this process. The drain finalises and stores every
open stream within the deadline, telling each client (`error` server_restarting, then `stopped`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from ..auth.counters import CounterStore, retry_after_header
from ..auth.rate_limit import RateLimiter
from ..billing import Charge
from ..db.handle import DatabaseHandle
from ..db.transcriptions import Transcription
from ..providers.deepgram_live import DEFAULT_BASE_URL, DeepgramLive
from ..providers.results import Segment
from ..settings import Settings, secret
from .options import StreamError
from .session import LiveTranscription, ProviderRecorder, Sender, StreamLimits, StreamRecorder

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
# Stream writes at once: SQLite has one writer (more only wait for its lock, or time out as "locked"); a Postgres
# pool of DATABASE_POOL_SIZE connections is shared with every request, so streams take at most half of it.
SQLITE_WRITERS = 1


class ThrottledRecorder:
    """A StreamRecorder letting only `slots` stream writes reach the database at once (saves, finishes)."""

    def __init__(self, recorder: StreamRecorder, slots: int) -> None:
        self.recorder = recorder
        self.slots = asyncio.Semaphore(slots)

    def stream_charge(self, *, endpoint: str, request_id: str, duration_ms: int, audio_seconds: float) -> Charge:
        return self.recorder.stream_charge(
            endpoint=endpoint, request_id=request_id, duration_ms=duration_ms, audio_seconds=audio_seconds
        )

    async def open_stream_transcription(
        self,
        user_id: str,
        *,
        provider: str,
        model: str | None,
        language: str | None,
        transcript: str,
        segments: list[Segment],
        duration_s: float,
    ) -> Transcription:
        async with self.slots:
            return await self.recorder.open_stream_transcription(
                user_id,
                provider=provider,
                model=model,
                language=language,
                transcript=transcript,
                segments=segments,
                duration_s=duration_s,
            )

    async def append_stream_text(
        self, transcription_id: str, *, transcript: str, segments: list[Segment], duration_s: float
    ) -> None:
        async with self.slots:
            await self.recorder.append_stream_text(
                transcription_id, transcript=transcript, segments=segments, duration_s=duration_s
            )

    async def finish_stream(
        self,
        user_id: str,
        transcription_id: str | None,
        *,
        provider: str,
        model: str | None,
        language: str | None,
        transcript: str,
        segments: list[Segment],
        duration_s: float,
        charge: Charge | None,
    ) -> Transcription:
        async with self.slots:
            return await self.recorder.finish_stream(
                user_id,
                transcription_id,
                provider=provider,
                model=model,
                language=language,
                transcript=transcript,
                segments=segments,
                duration_s=duration_s,
                charge=charge,
            )


def limits_from(settings: Settings) -> StreamLimits:
    return StreamLimits(
        max_chunk_bytes=settings.stream_max_chunk_bytes,
        max_seconds=settings.stream_max_seconds,
        idle_timeout_s=settings.stream_idle_timeout_s,
        keepalive_s=settings.stream_keepalive_s,
        flush_s=settings.stream_flush_s,
        finalize_timeout_s=settings.stream_finalize_timeout_s,
    )


def deepgram_live(settings: Settings) -> DeepgramLive | None:
    """The live client when DEEPGRAM_API_KEY is set (at DEEPGRAM_BASE_URL, e.g. a fake), else None."""
    if settings.deepgram_api_key is None:
        return None
    return DeepgramLive(
        secret(settings.deepgram_api_key),
        settings.deepgram_base_url or DEFAULT_BASE_URL,
        settings.deepgram_model,
        connect_timeout=min(CONNECT_TIMEOUT_S, settings.deepgram_timeout),
    )


class LiveStreams:
    """The feature. Sessions live as long as their connection; a stream is one start..stopped within it."""

    name = "live-streams"

    def __init__(
        self,
        settings: Settings,
        database: DatabaseHandle,
        recorder: StreamRecorder,
        counters: CounterStore,
        *,
        deepgram: DeepgramLive | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_provider: ProviderRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.record_provider = record_provider  # each upstream connect, to the dashboard's provider status
        self.database = database
        slots = SQLITE_WRITERS if settings.is_sqlite else max(1, settings.database_pool_size // 2)
        self.recorder = ThrottledRecorder(recorder, slots)
        self.limits = limits_from(settings)
        self.deepgram = deepgram if deepgram is not None else deepgram_live(settings)
        self.clock = clock
        self.max_per_user = settings.stream_max_per_user
        self._starts = RateLimiter(counters, settings.stream_starts_per_minute)
        self._sessions: set[LiveTranscription] = set()
        self._streaming: dict[str, set[LiveTranscription]] = {}
        self.closing = False

    # ----- sessions -------------------------------------------------------------------------------------------

    def open_session(
        self, *, user_id: str, sender: Sender, endpoint: str, default_language: str | None = None
    ) -> LiveTranscription:
        session = LiveTranscription(
            self,
            session_id="lts_" + secrets.token_hex(10),
            user_id=user_id,
            endpoint=endpoint,
            sender=sender,
            deepgram=self.deepgram,
            recorder=self.recorder,
            limits=self.limits,
            default_language=default_language,
            clock=self.clock,
            record_provider=self.record_provider,
        )
        self._sessions.add(session)
        return session

    @property
    def sessions(self) -> list[LiveTranscription]:
        """The open sessions (one per connected client), for dashboards."""
        return list(self._sessions)

    def counts(self) -> dict[str, int]:
        return {"sessions": len(self._sessions), "streams": sum(len(s) for s in self._streaming.values())}

    def streams_of(self, user_id: str) -> int:
        return len(self._streaming.get(user_id, ()))

    # ----- the Gate a session talks to ------------------------------------------------------------------------

    async def admit(self, session: LiveTranscription) -> None:
        if self.closing:
            raise StreamError("server_restarting", "The server is restarting: reconnect and start again.")
        if self.deepgram is None:
            missing = list(self.settings.providers()["deepgram"].missing)
            raise StreamError(
                "provider_unconfigured",
                f"deepgram is not configured on this server: set {', '.join(missing)}",
                {"provider": "deepgram", "missing": missing},
            )
        if not self.database.ready.is_set():
            raise StreamError("database_unavailable", "The database is not reachable right now; retry shortly.")
        decision = await self._starts.check(f"live-start:{session.user_id}")
        if not decision.allowed:
            raise StreamError(
                "rate_limited",
                f"at most {decision.limit} stream starts per minute",
                {"retry_after": int(retry_after_header(decision.retry_after))},
            )
        mine = self._streaming.setdefault(session.user_id, set())
        if len(mine) >= self.max_per_user:
            raise StreamError(
                "too_many_streams",
                f"at most {self.max_per_user} streams at once per user",
                {"max_streams": self.max_per_user},
            )
        mine.add(session)

    def release(self, session: LiveTranscription) -> None:
        mine = self._streaming.get(session.user_id)
        if mine is not None:
            mine.discard(session)
            if not mine:
                del self._streaming[session.user_id]

    def closed(self, session: LiveTranscription) -> None:
        self.release(session)
        self._sessions.discard(session)

    # ----- feature --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.deepgram is None:
            log.info("live transcription: Deepgram is not configured; `start` will answer provider_unconfigured")

    async def drain(self, deadline: float) -> None:
        """Refuse new streams; finalise and store every open one (telling its client) by `deadline`."""
        self.closing = True
        sessions = list(self._sessions)
        if sessions:
            log.info("draining %d live streams", len(sessions))
            await asyncio.gather(*(s.shutdown(deadline) for s in sessions), return_exceptions=True)

    async def stop(self) -> None:
        """Whatever is left after the drain: cut it, storing what was heard where still possible."""
        self.closing = True
        await asyncio.gather(*(s.abort() for s in list(self._sessions)), return_exceptions=True)
