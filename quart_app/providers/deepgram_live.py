"""Deepgram live (streaming) transcription through deepgram-sdk 7: one WebSocket per `DeepgramLive.connect()`.

    live = DeepgramLive(api_key, base_url, model="nova-3")
    async with live.connect(LiveOptions(encoding="mulaw", sample_rate=8000, utterance_end_ms=1000)) as stream:
        await stream.send_audio(chunk)               # False once the connection is gone, never raises
        async for event in stream:                   # Transcript | UtteranceEnd | SpeechStarted | Metadata | Closed
            ...

The event stream always ends with exactly one `Closed`. `Closed.clean` is true only for a normal 1000 close (after
`close_stream()`, or when this side closed); a dropped TCP connection (1006), Deepgram's NET-0001 idle close (1011)
or any other error close is unclean, and the caller is expected to reconnect and replay its unconfirmed audio.
Opening a connection fails with `DeepgramLiveError` (bad key, bad options, unreachable, timeout).

Leaf module: only the standard library and deepgram-sdk (with `websockets`, the transport the SDK hands back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.socket_client import AsyncV1SocketClient
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from websockets.exceptions import ConnectionClosed, WebSocketException

DEFAULT_BASE_URL = "https://api.deepgram.com"
NORMAL_CLOSURE = 1000
ABNORMAL_CLOSURE = 1006  # no close frame: the TCP connection just went away

logger = logging.getLogger(__name__)


# ----- events -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str | None = None
    speaker: int | None = None


@dataclass(frozen=True)
class Transcript:
    """One `Results` message: interim (`is_final=False`) or final; times are seconds from the connection's start."""

    text: str
    is_final: bool
    speech_final: bool
    start: float
    duration: float
    confidence: float
    words: tuple[Word, ...] = ()
    from_finalize: bool = False

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class UtteranceEnd:
    last_word_end: float


@dataclass(frozen=True)
class SpeechStarted:
    timestamp: float


@dataclass(frozen=True)
class Metadata:
    """Deepgram's summary, sent right before it closes after `close_stream()`."""

    request_id: str
    duration: float


@dataclass(frozen=True)
class Closed:
    """The connection is over; always the last event."""

    code: int
    reason: str
    clean: bool


LiveEvent = Transcript | UtteranceEnd | SpeechStarted | Metadata | Closed


class DeepgramLiveError(Exception):
    """The live connection could not be opened."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    @property
    def retryable(self) -> bool:
        """Worth another attempt later: no answer, a timeout, 429 or a 5xx (not a bad key or bad options)."""
        return self.status_code is None or self.status_code == 429 or self.status_code >= 500


# ----- options ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveOptions:
    """Query parameters of one live connection. `endpointing`: None = Deepgram's default (10 ms), False = off.

    Containerized audio (WebM, Ogg, WAV) is sent with `encoding`, `sample_rate` and `channels` all None: Deepgram
    reads them from the container and refuses a raw `encoding` it cannot apply.
    """

    encoding: str | None = "linear16"
    sample_rate: int | None = 16_000
    channels: int | None = 1
    language: str | None = None
    interim_results: bool = True
    punctuate: bool = True
    smart_format: bool = False
    diarize: bool = False
    utterance_end_ms: int | None = None
    vad_events: bool = False
    endpointing: int | bool | None = None


def _flag(value: bool) -> str:
    return "true" if value else "false"


# ----- client -----------------------------------------------------------------------------------------------------


def websocket_base(base_url: str) -> str:
    """`https://host` -> `wss://host`, `http://127.0.0.1:8703` -> `ws://127.0.0.1:8703` (no trailing slash)."""
    base = base_url.rstrip("/")
    return "ws" + base[4:] if base.startswith("http") else base


class DeepgramLive:
    """Opens live transcription connections; holds no connection itself, so one instance serves every stream."""

    name = "deepgram"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = "nova-3",
        *,
        connect_timeout: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        socket_base = websocket_base(base)
        environment = DeepgramClientEnvironment(base=base, production=socket_base, agent=socket_base, agent_rest=base)
        self.model = model
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self._client = AsyncDeepgramClient(
            api_key=api_key, environment=environment, timeout=connect_timeout, max_retries=0, reconnect=False
        )

    def connect(self, options: LiveOptions | None = None) -> LiveStream:
        """An unopened stream: `async with live.connect(options) as stream:` opens it."""
        return LiveStream(self, options or LiveOptions())

    def _open(self, options: LiveOptions) -> AbstractAsyncContextManager[AsyncV1SocketClient]:
        endpointing: str | int | None
        if options.endpointing is None or options.endpointing is True:
            endpointing = None
        elif options.endpointing is False:
            endpointing = "false"
        else:
            endpointing = int(options.endpointing)
        connect = self._client.listen.v1.connect(
            model=self.model,
            encoding=options.encoding,
            sample_rate=options.sample_rate,
            channels=options.channels,
            language=options.language,
            interim_results=_flag(options.interim_results),
            punctuate=_flag(options.punctuate),
            smart_format=_flag(options.smart_format) if options.smart_format else None,
            diarize=_flag(options.diarize) if options.diarize else None,
            utterance_end_ms=options.utterance_end_ms,
            vad_events=_flag(options.vad_events) if options.vad_events else None,
            endpointing=endpointing,
        )
        return cast(AbstractAsyncContextManager[AsyncV1SocketClient], connect)


class LiveStream:
    """One live connection. Use as an async context manager; iterate it for events."""

    def __init__(self, owner: DeepgramLive, options: LiveOptions) -> None:
        self.options = options
        self._owner = owner
        self._context: AbstractAsyncContextManager[AsyncV1SocketClient] | None = None
        self._socket: AsyncV1SocketClient | None = None
        self._events: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._closed: Closed | None = None
        self._delivered_close = False
        self._leaving = False
        self.bytes_sent = 0

    # ----- lifecycle ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> LiveStream:
        if self._context is not None:
            raise RuntimeError("a LiveStream opens only once; call connect() again for a new connection")
        context = self._owner._open(self.options)
        self._context = context
        try:
            async with asyncio.timeout(self._owner.connect_timeout):
                self._socket = await context.__aenter__()
        except ApiError as exc:
            raise DeepgramLiveError(_handshake_message(exc), exc.status_code) from None
        except TimeoutError:
            raise DeepgramLiveError(f"no live connection within {self._owner.connect_timeout:g}s") from None
        except (OSError, WebSocketException) as exc:
            raise DeepgramLiveError(f"live connection failed: {type(exc).__name__}: {exc}") from None
        self._reader = asyncio.create_task(self._read(self._socket), name="deepgram-live-reader")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the WebSocket (normal 1000 close) if it is still open; safe to call twice."""
        if self._leaving or self._context is None or self._socket is None:
            return
        self._leaving = True
        try:
            async with asyncio.timeout(self._owner.close_timeout):
                await self._context.__aexit__(None, None, None)
        except (TimeoutError, OSError, WebSocketException) as exc:
            logger.debug("deepgram live close did not complete: %s", exc)
        if self._reader is not None:
            try:
                async with asyncio.timeout(self._owner.close_timeout):
                    await asyncio.shield(self._reader)
            except TimeoutError:
                self._reader.cancel()
            if self._closed is None:
                self._finish(Closed(NORMAL_CLOSURE, "closed by client", clean=True))

    @property
    def closed(self) -> Closed | None:
        """The `Closed` event once the connection is over (it may still be waiting in the event queue)."""
        return self._closed

    # ----- sending ------------------------------------------------------------------------------------------------

    async def send_audio(self, data: bytes) -> bool:
        """Send one chunk of audio; False if the connection is gone (the `Closed` event says why)."""
        if not data:  # an empty binary frame means "close the stream" to Deepgram: never send one by accident
            return self._socket is not None and self._closed is None
        socket = self._socket
        sent = socket is not None and await self._call(lambda: socket.send_media(data))
        if sent:
            self.bytes_sent += len(data)
        return sent

    async def keep_alive(self) -> bool:
        """`{"type":"KeepAlive"}`: resets Deepgram's 10 s no-audio timeout without audio."""
        socket = self._socket
        return socket is not None and await self._call(socket.send_keep_alive)

    async def finalize(self) -> bool:
        """`{"type":"Finalize"}`: Deepgram flushes what it holds as a final Transcript with `from_finalize`."""
        socket = self._socket
        return socket is not None and await self._call(socket.send_finalize)

    async def close_stream(self) -> bool:
        """`{"type":"CloseStream"}`: Deepgram sends the last finals and Metadata, then closes normally (clean)."""
        socket = self._socket
        return socket is not None and await self._call(socket.send_close_stream)

    async def _call(self, send: Callable[[], Awaitable[None]]) -> bool:
        if self._closed is not None or self._leaving:
            return False
        try:
            await send()
        except ConnectionClosed:
            return False  # the reader reports why
        return True

    # ----- receiving ----------------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[LiveEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[LiveEvent]:
        """Events in arrival order, ending after the `Closed` event (at once if that was already delivered)."""
        if self._socket is None:
            raise RuntimeError("open the stream first: async with live.connect(...) as stream")
        while not self._delivered_close:
            event = await self._events.get()
            if isinstance(event, Closed):
                self._delivered_close = True
            yield event

    async def _read(self, socket: AsyncV1SocketClient) -> None:
        try:
            while True:
                try:
                    message = await socket.recv()
                except ValueError as exc:  # a text frame that is not JSON: skip it, the stream goes on
                    logger.warning("deepgram live sent an unreadable message: %s", exc)
                    continue
                event = _event(message)
                if event is not None:
                    self._events.put_nowait(event)
        except ConnectionClosed as exc:
            frame = exc.rcvd
            if frame is None:
                closed = Closed(ABNORMAL_CLOSURE, "connection lost without a close frame", clean=False)
            else:
                closed = Closed(frame.code, frame.reason, clean=frame.code == NORMAL_CLOSURE)
        except asyncio.CancelledError:
            closed = Closed(ABNORMAL_CLOSURE, "reader cancelled", clean=False)
            self._finish(closed)
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the socket ends this stream, never the caller
            closed = Closed(ABNORMAL_CLOSURE, f"{type(exc).__name__}: {exc}", clean=False)
        self._finish(closed)

    def _finish(self, closed: Closed) -> None:
        if self._closed is None:
            self._closed = closed
            self._events.put_nowait(closed)


def _event(message: Any) -> LiveEvent | None:
    """The SDK's parsed message as one of our events; None for what the caller need not see."""
    if isinstance(message, ListenV1Results):
        alternatives = message.channel.alternatives
        if not alternatives:
            return Transcript(
                "",
                bool(message.is_final),
                bool(message.speech_final),
                message.start,
                message.duration,
                0.0,
                (),
                bool(message.from_finalize),
            )
        best = alternatives[0]
        words = tuple(Word(w.word, w.start, w.end, w.confidence, w.punctuated_word, w.speaker) for w in best.words)
        return Transcript(
            best.transcript,
            bool(message.is_final),
            bool(message.speech_final),
            message.start,
            message.duration,
            best.confidence,
            words,
            bool(message.from_finalize),
        )
    if isinstance(message, ListenV1UtteranceEnd):
        return UtteranceEnd(message.last_word_end)
    if isinstance(message, ListenV1SpeechStarted):
        return SpeechStarted(message.timestamp)
    if isinstance(message, ListenV1Metadata):
        return Metadata(message.request_id, message.duration)
    if isinstance(message, ListenV1Error):
        logger.warning("deepgram live error message: %s: %s", message.variant, message.description)
    return None


def _handshake_message(exc: ApiError) -> str:
    """Deepgram's `dg-error` header when the SDK kept the handshake response around, else the SDK's text."""
    headers = getattr(exc.__context__, "headers", None)
    detail = headers.get("dg-error") if headers is not None else None
    return str(detail or exc.body or f"HTTP {exc.status_code}")
