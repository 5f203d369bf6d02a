"""One client's live transcription session, whatever the transport.

An adapter (the Socket.IO namespace or the plain WebSocket route) creates one `LiveTranscription` per
connection, feeds it the client's messages and hands it a `Sender` for the events going back:

    session = streams.open_session(user_id=..., sender=send, default_language="en", endpoint="ws /audio-stream")
    session.start({...}); session.audio(chunk); session.stop()      # never block; answered through `send`
    session.close()                                                   # the client went away

Client commands go through one inbox, handled in order by the session's own task, so a chunk sent right after
`start` is forwarded once the upstream is open and a `start` sent right after `stop` follows the `stopped`.
A stream (start to stop) moves idle -> started -> stopping -> idle and owns three tasks: the upstream reader
(results to the client, reconnect and replay on a dropped connection), a ticker (KeepAlive while the client
is quiet, idle and length limits, incremental persistence) and at most one flush at a time.

Every end of a stream (stop, limit, upstream failure, drain) stores the text and sends `stopped`; an end the
client did not ask for is announced by `error` first. Times sent to the client are seconds of stream audio:
they continue across upstream reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..billing import Charge
from ..db.transcriptions import Transcription
from ..providers.deepgram_live import (
    Closed,
    DeepgramLive,
    DeepgramLiveError,
    LiveStream,
    Metadata,
    Transcript,
    UtteranceEnd,
)
from ..providers.results import Segment
from .options import StreamError, StreamOptions, parse_start
from .replay import ReplayBuffer

log = logging.getLogger(__name__)

PROVIDER = "deepgram"
RECONNECTS_PER_STREAM = 3  # one attempt per drop, and no more than this many drops in one stream
MAX_QUEUED_BYTES = 8 * 1024 * 1024  # client audio waiting for the session's task (upstream reconnecting)

Sender = Callable[[str, dict[str, Any]], Awaitable[None]]


class _Throttle:
    """One warning per `every_s` for a failure every stream may hit at once (a database outage), with a count."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self.last = float("-inf")
        self.suppressed = 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.suppressed += 1
            return
        more = f" (and {self.suppressed} more like it)" if self.suppressed else ""
        log.warning("%s%s", message, more)
        self.last, self.suppressed = now, 0


_SAVE_WARNINGS = _Throttle()


class StreamRecorder(Protocol):
    """Where a stream's text goes and how it is metered: `billing.Billing` in the service."""

    def stream_charge(self, *, endpoint: str, request_id: str, duration_ms: int, audio_seconds: float) -> Charge: ...

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
    ) -> Transcription: ...

    async def append_stream_text(
        self, transcription_id: str, *, transcript: str, segments: list[Segment], duration_s: float
    ) -> None: ...

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
    ) -> Transcription: ...


class ProviderRecorder(Protocol):
    """Where provider connects are reported (the monitoring's `ProviderCalls.record`, injected by the app)."""

    def __call__(
        self, provider: str, kind: str, *, seconds: float, error: str | None = None, detail: str | None = None
    ) -> None: ...


class Gate(Protocol):
    """The feature's side of a session: admission to stream (limits, drain), and bookkeeping."""

    async def admit(self, session: LiveTranscription) -> None:
        """Raise StreamError when this session may not start a stream now."""

    def release(self, session: LiveTranscription) -> None:
        """The session's stream is over (counts no more against the user's concurrent streams)."""

    def closed(self, session: LiveTranscription) -> None:
        """The session is over: its client left, or it was aborted."""


@dataclass(frozen=True)
class StreamLimits:
    max_chunk_bytes: int = 256 * 1024
    max_seconds: float = 7200.0
    idle_timeout_s: float = 30.0
    keepalive_s: float = 4.0
    flush_s: float = 3.0
    finalize_timeout_s: float = 3.0
    replay_s: float = 10.0
    disconnect_grace_s: float = 0.8  # client gone: time for the last results before the upstream is closed

    @property
    def tick_s(self) -> float:
        """How often the ticker looks at the clock: often enough for the smallest of the limits."""
        smallest = min(0.5, self.keepalive_s / 2, self.idle_timeout_s / 4, self.flush_s / 2, self.max_seconds / 4)
        return max(0.02, smallest)


@dataclass(eq=False)
class _Stream:
    """The state of one stream, from `start` to its end."""

    number: int
    options: StreamOptions
    started_at: float
    last_audio_at: float
    last_upstream_at: float
    last_flush_at: float
    buffer: ReplayBuffer | None  # raw encodings
    header: bytes | None = None  # compressed encodings: the first chunk (container/codec header)
    upstream: LiveStream | None = None
    opening: LiveStream | None = None  # a reconnection being fed its replay, not yet `upstream`
    conn_start_byte: int = 0  # stream offset of the current connection's first byte (raw encodings)
    conn_offset_s: float = 0.0  # stream time of the current connection's time 0
    confirmed_byte: int = 0
    confirmed_s: float = 0.0  # stream time covered by final results
    heard_s: float = 0.0  # furthest stream time any result or Metadata reached
    bytes_in: int = 0
    reconnects: int = 0
    pieces: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    version: int = 0
    saved_version: int = 0
    transcription_id: str | None = None
    ending: bool = False  # no more audio: stop, limit, upstream failure, drain or disconnect
    finished: bool = False  # stored for good
    reader: asyncio.Task[None] | None = None
    ticker: asyncio.Task[None] | None = None
    flusher: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def text(self) -> str:
        return " ".join(self.pieces)

    @property
    def audio_seconds(self) -> float:
        rate = self.options.bytes_per_second
        return self.bytes_in / rate if rate else self.heard_s


class LiveTranscription:
    """A client's session: any number of streams one after another, on one connection."""

    def __init__(
        self,
        gate: Gate,
        *,
        session_id: str,
        user_id: str,
        endpoint: str,
        sender: Sender,
        deepgram: DeepgramLive | None,
        recorder: StreamRecorder,
        limits: StreamLimits,
        default_language: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_provider: ProviderRecorder | None = None,
    ) -> None:
        self.gate = gate
        self._record_provider = record_provider
        self.session_id = session_id
        self.user_id = user_id
        self.endpoint = endpoint
        self.default_language = default_language
        self.limits = limits
        self._sender = sender
        self._deepgram = deepgram
        self._recorder = recorder
        self._clock = clock
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._queued_bytes = 0
        self._send_lock = asyncio.Lock()
        self._stream: _Stream | None = None  # the stream taking audio (None while idle or once it is ending)
        self._active: _Stream | None = None  # the stream not yet stored (may be ending)
        self._streams = 0
        self._gone = False
        self._told_not_started = False
        self._drained = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"live-session-{session_id}")

    # ----- what adapters call ---------------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    @property
    def finished(self) -> bool:
        return self._task.done()

    def start(self, payload: Any = None) -> None:
        self._submit(("start", payload))

    def audio(self, data: Any) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            self.reject("bad_message", "audio must be a binary message")
            return
        size = len(data)
        if size > self.limits.max_chunk_bytes:
            self.reject(
                "chunk_too_large",
                f"audio chunks may be at most {self.limits.max_chunk_bytes} bytes (got {size})",
                max_bytes=self.limits.max_chunk_bytes,
            )
            return
        if size == 0:
            return
        if self._queued_bytes + size > MAX_QUEUED_BYTES:
            self.reject("overloaded", "audio is arriving faster than it can be forwarded; this chunk was dropped")
            return
        self._queued_bytes += size
        self._submit(("audio", bytes(data)))

    def stop(self) -> None:
        self._submit(("stop",))

    def reject(self, code: str, message: str, **extra: Any) -> None:
        """Answer a bad client message with `error`, in order with everything else; nothing else changes."""
        self._submit(("error", StreamError(code, message, extra)))

    def close(self) -> None:
        """The client is gone: end the stream at once (results still in flight are kept), then the session."""
        if not self._gone:
            self._gone = True
            self._submit(("gone",))

    async def shutdown(self, deadline: float) -> None:
        """Drain: finalise and store the stream (telling the client), by `deadline` on the loop's clock."""
        if self._task.done():
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(("shutdown", done, deadline))
        await asyncio.wait({done, self._task}, return_when=asyncio.FIRST_COMPLETED)

    async def abort(self) -> None:
        """Stop everything now (the feature stops): store what was heard if still possible, briefly."""
        self._gone = True
        self._task.cancel()
        await asyncio.wait({self._task})
        st = self._active
        if st is None or st.finished:
            return
        st.ending = True
        await _cancel(st.ticker, st.reader)
        await _close(st.upstream)
        await _close(st.opening)
        try:
            await asyncio.wait_for(self._store(st, failed=True), 3.0)
        except Exception as exc:  # noqa: BLE001 - the process is stopping; say what was lost, once
            log.warning("live stream %s not stored at shutdown: %s", self.session_id, _short(exc))

    # ----- the session's task ---------------------------------------------------------------------------------

    def _submit(self, item: tuple[Any, ...]) -> None:
        if not self._task.done():
            self._inbox.put_nowait(item)

    async def _run(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                kind = item[0]
                try:
                    if kind == "audio":
                        self._queued_bytes -= len(item[1])
                        await self._on_audio(item[1])
                    elif kind == "start":
                        await self._on_start(item[1])
                    elif kind == "stop":
                        await self._on_stop()
                    elif kind == "error":
                        await self._send_error(item[1])
                    elif kind == "end":
                        current = self._stream
                        if current is not None and item[1] is current:
                            await self._end(current, item[2], self.limits.finalize_timeout_s, failed=item[3])
                    elif kind == "shutdown":
                        try:
                            await self._on_shutdown(item[2])
                        finally:
                            item[1].set_result(None)
                    elif kind == "gone":
                        if self._stream is not None:
                            await self._end(self._stream, None, self.limits.disconnect_grace_s)
                        return
                except Exception:
                    log.exception("live session %s failed handling %s", self.session_id, kind)
                    await self._send_error(StreamError("internal_error", "Something went wrong on the server."))
                    if self._stream is not None:
                        with contextlib.suppress(Exception):
                            await self._end(self._stream, None, self.limits.finalize_timeout_s, failed=True)
        finally:
            self.gate.closed(self)

    async def _on_start(self, payload: Any) -> None:
        self._told_not_started = False
        if self._gone:
            return
        if self._stream is not None:
            await self._send_error(StreamError("already_started", "a stream is already running; send stop first"))
            return
        try:
            options = parse_start(payload, self.default_language)
            await self.gate.admit(self)
        except StreamError as exc:
            await self._send_error(exc)
            return
        assert self._deepgram is not None  # admit() refuses when Deepgram is unconfigured
        upstream = self._deepgram.connect(options.live_options())
        connecting = time.perf_counter()
        try:
            await upstream.__aenter__()
        except Exception as exc:
            self.gate.release(self)
            if not isinstance(exc, DeepgramLiveError):
                log.exception("live stream %s: opening the Deepgram connection failed", self.session_id)
                exc = DeepgramLiveError(type(exc).__name__)
            self._connected(connecting, exc.message)
            log.warning("live stream %s: Deepgram refused the connection: %s", self.session_id, exc.message)
            await self._send_error(
                StreamError(
                    "upstream_error",
                    f"The transcription service refused the stream: {exc.message}",
                    {"provider": PROVIDER, "upstream_status": exc.status_code, "retryable": exc.retryable},
                )
            )
            return
        self._connected(connecting)
        now = self._clock()
        self._streams += 1
        raw_rate = options.bytes_per_second
        st = _Stream(
            number=self._streams,
            options=options,
            started_at=now,
            last_audio_at=now,
            last_upstream_at=now,
            last_flush_at=now,
            buffer=ReplayBuffer(int(raw_rate * self.limits.replay_s), options.block) if raw_rate else None,
            upstream=upstream,
        )
        self._stream = self._active = st
        st.reader = asyncio.get_running_loop().create_task(self._read(st), name=f"live-reader-{self.session_id}")
        st.ticker = asyncio.get_running_loop().create_task(self._tick(st), name=f"live-ticker-{self.session_id}")
        await self._send("started", {"session_id": self.session_id})
        if self._gone:  # the client left while the upstream was opening
            await self._end(st, None, self.limits.disconnect_grace_s)

    async def _on_audio(self, data: bytes) -> None:
        st = self._stream
        if st is None:
            # Once until the next start or stop, not for every chunk; and not after the drain ended the stream,
            # when audio still in flight is expected.
            if not self._told_not_started and not self._drained:
                self._told_not_started = True
                await self._send_error(StreamError("not_started", "no stream is running: send start first"))
            return
        now = self._clock()
        rate = st.options.bytes_per_second
        if rate and (st.bytes_in + len(data)) / rate > self.limits.max_seconds:
            await self._end(st, _too_long(self.limits.max_seconds), self.limits.finalize_timeout_s)
            return
        st.last_audio_at = now
        st.bytes_in += len(data)
        if st.buffer is not None:
            st.buffer.append(data)
        elif st.header is None:
            st.header = data
        upstream = st.upstream
        if upstream is not None and await upstream.send_audio(data):
            st.last_upstream_at = now
        # A chunk the upstream did not take is in the replay buffer; the reader reconnects and resends it.

    async def _on_stop(self) -> None:
        self._told_not_started = False
        st = self._stream
        if st is None:
            await self._send_error(StreamError("not_started", "no stream is running"))
            return
        await self._end(st, None, self.limits.finalize_timeout_s)

    async def _on_shutdown(self, deadline: float) -> None:
        st = self._stream
        if st is None:
            return
        self._drained = True
        loop = asyncio.get_running_loop()
        wait_s = max(0.1, min(self.limits.finalize_timeout_s, deadline - loop.time() - 1.0))
        error = StreamError("server_restarting", "The server is restarting: the stream was stopped and saved.")
        await self._end(st, error, wait_s)

    # ----- ending a stream ------------------------------------------------------------------------------------

    async def _end(self, st: _Stream, error: StreamError | None, wait_s: float, *, failed: bool = False) -> None:
        """Finalise upstream (bounded by `wait_s`), store and meter, then `error` (if any) and `stopped`."""
        if st.ending:
            return
        st.ending = True
        if self._stream is st:
            self._stream = None
        await _cancel(st.ticker)
        upstream = st.upstream
        if upstream is not None and not failed:
            # Finalize flushes what Deepgram holds; CloseStream sends the last results, Metadata and closes.
            await upstream.finalize()
            await upstream.close_stream()
        if st.reader is not None and not st.reader.done():
            await asyncio.wait({st.reader}, timeout=wait_s)
            await _cancel(st.reader)
        await _close(upstream)
        for other in (st.upstream, st.opening):  # a reconnect opened another one meanwhile
            if other is not upstream:
                await _close(other)
        self.gate.release(self)
        record = None
        try:
            record = await self._store(st, failed=failed)
        except Exception as exc:  # noqa: BLE001 - a storage outage: the client keeps the text it saw
            log.warning("live stream %s: could not store the transcript: %s", self.session_id, _short(exc))
            await self._send_error(StreamError("storage_failed", "The transcript could not be saved right now."))
        if error is not None:
            await self._send_error(error)
        await self._send(
            "stopped",
            {
                "transcription_id": record.id if record is not None else st.transcription_id,
                "text": st.text,
                "duration_s": round(st.audio_seconds, 3),
            },
        )

    async def _store(self, st: _Stream, *, failed: bool) -> Transcription | None:
        """The final text and the stream's one usage row, in one transaction. Idempotent per stream."""
        async with st.lock:
            if st.finished:
                return None
            seconds = st.audio_seconds
            if st.transcription_id is None and not st.pieces and seconds <= 0:
                st.finished = True  # nothing heard, nothing to keep or bill
                if self._active is st:
                    self._active = None
                return None
            # A stream cut short by a failure bills only the audio that came back as final results.
            billable = min(seconds, st.confirmed_s) if failed else seconds
            charge = None
            if billable > 0:
                charge = self._recorder.stream_charge(
                    endpoint=self.endpoint,
                    request_id=f"{self.session_id}.{st.number}",
                    duration_ms=int((self._clock() - st.started_at) * 1000),
                    audio_seconds=round(billable, 3),
                )
            record = await self._recorder.finish_stream(
                self.user_id,
                st.transcription_id,
                provider=PROVIDER,
                model=self._model,
                language=st.options.language,
                transcript=st.text,
                segments=list(st.segments),
                duration_s=round(seconds, 3),
                charge=charge,
            )
            st.finished = True
            st.transcription_id = record.id
            st.saved_version = st.version
            if self._active is st:
                self._active = None
            return record

    @property
    def _model(self) -> str | None:
        return self._deepgram.model if self._deepgram is not None else None

    # ----- upstream -------------------------------------------------------------------------------------------

    async def _read(self, st: _Stream) -> None:
        """Deepgram's events to the client; a dropped connection is reopened once and fed the unconfirmed audio."""
        try:
            await self._relay(st)
        except Exception:  # a bug, not an outage: say so, and end the stream with what was heard
            log.exception("live stream %s: reading Deepgram's results failed", self.session_id)
            self._fail(st, "reading the transcription service's results failed", "internal_error")

    async def _relay(self, st: _Stream) -> None:
        upstream = st.upstream
        while upstream is not None:
            closed: Closed | None = None
            async for event in upstream:
                if isinstance(event, Transcript):
                    await self._on_transcript(st, event)
                elif isinstance(event, UtteranceEnd):
                    end = round(st.conn_offset_s + event.last_word_end, 3)
                    await self._send("utterance_end", {"last_word_end": end})
                elif isinstance(event, Metadata):
                    st.heard_s = max(st.heard_s, st.conn_offset_s + event.duration)
                elif isinstance(event, Closed):
                    closed = event
            if closed is None or closed.clean or st.ending:
                return
            upstream = await self._reconnect(st, upstream, closed)

    async def _on_transcript(self, st: _Stream, result: Transcript) -> None:
        offset = st.conn_offset_s
        start, end = offset + result.start, offset + result.end
        st.heard_s = max(st.heard_s, end)
        if result.is_final:
            st.confirmed_s = max(st.confirmed_s, end)
            rate = st.options.bytes_per_second
            if rate and st.buffer is not None:
                settled = st.conn_start_byte + int(result.end * rate)
                st.confirmed_byte = max(st.confirmed_byte, settled - settled % st.options.block)
                st.buffer.confirm(st.confirmed_byte)
            if result.text:
                st.pieces.append(result.text)
                st.segments.append(Segment(round(start, 3), round(end, 3), result.text))
                st.version += 1
        if not result.text:
            return
        payload: dict[str, Any] = {
            "text": result.text,
            "is_final": result.is_final,
            "speech_final": result.speech_final,
            "start": round(start, 3),
            "duration": round(result.duration, 3),
            "confidence": result.confidence,
        }
        if result.words:
            payload["words"] = [
                {
                    "word": w.word,
                    "start": round(offset + w.start, 3),
                    "end": round(offset + w.end, 3),
                    "confidence": w.confidence,
                    **({"punctuated_word": w.punctuated_word} if w.punctuated_word is not None else {}),
                    **({"speaker": w.speaker} if w.speaker is not None else {}),
                }
                for w in result.words
            ]
        await self._send("transcript", payload)

    async def _reconnect(self, st: _Stream, lost: LiveStream, closed: Closed) -> LiveStream | None:
        st.upstream = None
        await _close(lost)
        if st.reconnects >= RECONNECTS_PER_STREAM or self._deepgram is None:
            self._fail(st, f"the transcription service connection was lost ({closed.code} {closed.reason})")
            return None
        st.reconnects += 1
        log.info(
            "live stream %s: upstream closed (%d %s); reconnecting (%d)",
            self.session_id,
            closed.code,
            closed.reason[:80],
            st.reconnects,
        )
        upstream = self._deepgram.connect(st.options.live_options())
        connecting = time.perf_counter()
        try:
            await upstream.__aenter__()
        except DeepgramLiveError as exc:
            self._connected(connecting, exc.message)
            self._fail(st, f"the transcription service connection was lost and could not be reopened: {exc.message}")
            return None
        except Exception as exc:  # noqa: BLE001 - anything else the SDK raises: the same outcome for the client
            self._connected(connecting, type(exc).__name__)
            self._fail(st, f"the transcription service connection was lost and could not be reopened: {exc!r}")
            return None
        self._connected(connecting)
        if st.ending:
            await _close(upstream)
            return None
        st.opening = upstream
        await self._replay(st, upstream)
        st.opening = None
        st.upstream = upstream  # from here on the session's task sends new audio straight to it
        st.last_upstream_at = self._clock()
        return upstream

    def _connected(self, started: float, failure: str | None = None) -> None:
        """Report one upstream connect (its time, and why it failed) to the provider status, when injected."""
        if self._record_provider is not None:
            error = None if failure is None else "connect_failed"
            seconds = time.perf_counter() - started
            self._record_provider(PROVIDER, "live", seconds=seconds, error=error, detail=failure)

    async def _replay(self, st: _Stream, upstream: LiveStream) -> None:
        """Feed a new connection the audio the lost one never confirmed, catching up with audio still arriving."""
        rate = st.options.bytes_per_second
        if st.buffer is None or not rate:
            # Compressed audio cannot be cut at a time: resend its header and go on with new audio.
            st.conn_offset_s = st.heard_s
            if st.header is not None:
                await upstream.send_audio(st.header)
            return
        position = st.buffer.resume_offset(st.confirmed_byte)
        st.conn_start_byte = position
        st.conn_offset_s = position / rate
        while position < st.buffer.total:
            for piece in st.buffer.read(position):
                if not await upstream.send_audio(piece):
                    return  # dropped again: the reader sees its Closed next
                position += len(piece)

    def _fail(self, st: _Stream, reason: str, code: str = "upstream_lost") -> None:
        log.warning("live stream %s: %s", self.session_id, reason)
        error = StreamError(code, f"Transcription stopped: {reason}. What was transcribed is saved.")
        self._submit(("end", st, error, True))

    # ----- timers and persistence -----------------------------------------------------------------------------

    async def _tick(self, st: _Stream) -> None:
        try:
            await self._watch(st)
        except Exception:
            log.exception("live stream %s: the stream's timer failed", self.session_id)
            self._fail(st, "the stream's timer failed", "internal_error")

    async def _watch(self, st: _Stream) -> None:
        limits = self.limits
        while not st.ending:
            await asyncio.sleep(limits.tick_s)
            now = self._clock()
            if now - st.last_audio_at >= limits.idle_timeout_s:
                idle = StreamError(
                    "idle_timeout",
                    f"no audio for {limits.idle_timeout_s:g} s: the stream was stopped and saved",
                    {"idle_timeout_s": limits.idle_timeout_s},
                )
                self._submit(("end", st, idle, False))
                return
            if max(st.audio_seconds, now - st.started_at) >= limits.max_seconds:
                self._submit(("end", st, _too_long(limits.max_seconds), False))
                return
            upstream = st.upstream
            if upstream is not None and now - st.last_upstream_at >= limits.keepalive_s:
                st.last_upstream_at = now
                await upstream.keep_alive()
            if st.version != st.saved_version and now - st.last_flush_at >= limits.flush_s:
                if st.flusher is None or st.flusher.done():
                    st.last_flush_at = now
                    st.flusher = asyncio.get_running_loop().create_task(self._flush(st))

    async def _flush(self, st: _Stream) -> None:
        """Save the final text so far, so a crash loses only the last seconds. Never bills."""
        async with st.lock:
            if st.finished or st.version == st.saved_version:
                return
            version, text, segments = st.version, st.text, list(st.segments)
            try:
                if st.transcription_id is None:
                    record = await self._recorder.open_stream_transcription(
                        self.user_id,
                        provider=PROVIDER,
                        model=self._model,
                        language=st.options.language,
                        transcript=text,
                        segments=segments,
                        duration_s=round(st.audio_seconds, 3),
                    )
                    st.transcription_id = record.id
                else:
                    await self._recorder.append_stream_text(
                        st.transcription_id, transcript=text, segments=segments, duration_s=round(st.audio_seconds, 3)
                    )
            except Exception as exc:  # noqa: BLE001 - the database blinking: the next tick tries again
                _SAVE_WARNINGS.warn(
                    f"live stream {self.session_id}: saving the transcript so far failed: {_short(exc)}"
                )
                return
            st.saved_version = version

    # ----- sending --------------------------------------------------------------------------------------------

    async def _send(self, event: str, payload: dict[str, Any]) -> None:
        if self._gone:
            return
        async with self._send_lock:  # one at a time, in the order they were produced
            try:
                await self._sender(event, payload)
            except Exception as exc:  # noqa: BLE001 - the client went away mid-send; its close() follows
                log.debug("live session %s: send failed: %s", self.session_id, exc)

    async def _send_error(self, error: StreamError) -> None:
        await self._send("error", error.payload())


def _too_long(max_seconds: float) -> StreamError:
    return StreamError(
        "stream_too_long",
        f"streams may last at most {max_seconds:g} s: the stream was stopped and saved",
        {"max_seconds": max_seconds},
    )


async def _cancel(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel tasks and wait until they are done, without taking on their exceptions or cancellation."""
    pending = [task for task in tasks if task is not None and not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def _close(upstream: LiveStream | None) -> None:
    if upstream is not None:
        await upstream.aclose()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
