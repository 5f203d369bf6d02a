"""A phone call played into the service's Media Streams WebSocket exactly the way Twilio does it.

    async with TwilioMediaCall("ws://127.0.0.1:8000/twilio/stream", auth_token=token,
                               public_url="wss://voice.example.com/twilio/stream") as call:
        await call.play_wav(wav_bytes)          # 20 ms μ-law frames, paced in real time
        await call.wait_for_mark("reply-1")     # the service's mark, echoed once its audio has played
        await call.hangup()                     # `stop`, then the socket closes
    call.heard_ulaw, call.gaps(), call.marks    # what the caller heard, and when

The call has one clock, in 20 ms ticks. Each tick sends one inbound frame (the audio being played, else
silence, as a real phone line never stops sending) and plays 160 bytes of the service's audio. With
`pace=1.0` ticks follow the wall clock (`pace=0.5` is twice real time); with `pace=None` nothing moves until
`await call.advance(ms)`, which makes playback and mark timing fully deterministic. Every timestamp here is
call time (`call_ms`), so assertions count frames, not wall seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from fakes import g711
from fakes.twilio import post_webhook, sign

log = logging.getLogger(__name__)

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
BYTES_PER_MS = 8
SILENCE = bytes([g711.ULAW_SILENCE])
USER_AGENT = "Twilio.TmeWs/1.0"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def stream_from_twiml(twiml: str) -> tuple[str, dict[str, str]] | None:
    """(url, custom parameters) of the first `<Stream>` in a TwiML document, or None."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    stream = root.find(".//Stream")
    if stream is None or not stream.get("url"):
        return None
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")}
    return stream.get("url", ""), params


def signature_url(public_url: str, scheme: str = "wss") -> str:
    """The URL the X-Twilio-Signature is computed over: the stream URL in the `wss` (or `https`) form."""
    parts = urlsplit(public_url)
    mapping = {"wss": {"https": "wss", "http": "ws"}, "https": {"wss": "https", "ws": "http"}}[scheme]
    return parts._replace(scheme=mapping.get(parts.scheme, parts.scheme)).geturl()


@dataclass
class ReceivedMedia:
    """One `media` message from the service."""

    call_ms: int  # call clock when it arrived
    wall_time: float  # time.monotonic() when it arrived
    payload: bytes  # μ-law
    queued_at: int  # playback byte position where it was queued (it starts playing there)
    stream_sid: str


@dataclass
class MarkRecord:
    """A `mark` from the service and when Twilio echoed it back."""

    name: str
    received_ms: int
    position: int  # playback byte position the mark stands at
    echoed_ms: int | None = None
    cleared: bool = False  # echoed early because a `clear` dropped the audio before it


@dataclass
class ClearRecord:
    call_ms: int
    dropped_bytes: int
    marks: list[str]


@dataclass
class StreamRecord:
    """One WebSocket of the call (a redirect opens another)."""

    stream_sid: str
    url: str
    signed_url: str
    custom_parameters: dict[str, str]
    started_ms: int
    stopped_ms: int | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)  # every message sent, media included
    received: list[dict[str, Any]] = field(default_factory=list)  # every message from the service
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None  # "twilio" (stop/hangup/redirect) or "service"
    opened_at: float = field(default_factory=time.monotonic)  # wall clock (monotonic) `start` was sent, and the end
    closed_at: float | None = None


class TwilioMediaCall:
    """One simulated call: connect, talk, listen, hang up. Use from a single event loop.

    `url`: where to connect (e.g. the local hypercorn). `public_url`: the `<Stream url>` Twilio was given
    (default `url`); the signature is computed over it in the `signature_scheme` form ("wss" by default, the
    URL exactly as written in TwiML; "https" signs the https:// form instead) with no body parameters.
    """

    def __init__(
        self,
        url: str,
        *,
        auth_token: str,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        public_url: str | None = None,
        signature_scheme: str = "wss",
        pace: float | None = 1.0,
        extra_headers: Mapping[str, str] | None = None,
        open_timeout: float = 10.0,
        sign_requests: bool = True,
        linger_s: float | None = None,
    ) -> None:
        self.url = url
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.call_sid = call_sid or _sid("CA")
        self.custom_parameters = dict(custom_parameters or {})
        self.public_url = public_url or url
        self.signature_scheme = signature_scheme
        self.pace = pace
        self.extra_headers = dict(extra_headers or {})
        self.open_timeout = open_timeout
        self.sign_requests = sign_requests
        # Seconds the call stays up after the service side ends a stream (Twilio runs the TwiML after <Connect>:
        # a pause, an apology) before it hangs up; a REST update in that time opens a new stream. None: forever.
        self.linger_s = linger_s
        self._first_stream_sid = stream_sid
        # the call
        self.call_ms = 0
        self.streams: list[StreamRecord] = []
        self.ended = False
        # inbound (caller -> service)
        self._inbound = bytearray()
        self._inbound_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._inbound_total = 0  # bytes of played audio (not silence) queued so far
        self._inbound_sent = 0
        self.frames_sent = 0
        # outbound (service -> caller)
        self.received_media: list[ReceivedMedia] = []
        self.marks: list[MarkRecord] = []
        self.clears: list[ClearRecord] = []
        self.protocol_errors: list[str] = []
        self._playback = bytearray()
        self._queued_total = 0
        self.played_total = 0
        self.heard = bytearray()  # one 160-byte frame per tick: what the caller heard, silence included
        self.segments: list[list[int]] = []  # [start, end] in 1/8 ms (byte) units of continuous playback
        # machinery
        self._ws: ClientConnection | None = None
        self._ready = False  # a stream is open and `start` was sent: ticks may send media
        self._sequence = 0
        self._chunk = 0
        self._stream_start_tick = 0
        self._recv_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._send_lock: asyncio.Lock | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._fake_twilio: Any = None
        self._linger_task: asyncio.Task[None] | None = None

    # ----- properties --------------------------------------------------------------------------

    @property
    def stream(self) -> StreamRecord:
        return self.streams[-1]

    @property
    def stream_sid(self) -> str:
        return self.stream.stream_sid

    @property
    def connected(self) -> bool:
        return self._ready and self._ws is not None and self.stream.closed_by is None

    @property
    def heard_ulaw(self) -> bytes:
        return bytes(self.heard)

    @property
    def received_ulaw(self) -> bytes:
        """Every media payload the service sent, cleared or not, in arrival order."""
        return b"".join(m.payload for m in self.received_media)

    @property
    def pending_marks(self) -> list[str]:
        return [m.name for m in self.marks if m.echoed_ms is None]

    @property
    def unplayed_bytes(self) -> int:
        return len(self._playback)

    def heard_wav(self) -> bytes:
        """What the caller heard as a 16-bit 8 kHz WAV (for a listening test or a script's output)."""
        return g711.write_wav(g711.ulaw_decode(self.heard_ulaw), 8000)

    def gaps(self, min_ms: float = 0.0) -> list[tuple[float, float]]:
        """(start_ms, length_ms) of every silence between two pieces of the service's audio (underruns)."""
        found = []
        for (_, end), (start, _) in zip(self.segments, self.segments[1:], strict=False):
            length = (start - end) / BYTES_PER_MS
            if length > min_ms:
                found.append((end / BYTES_PER_MS, length))
        return found

    def sent_events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [m for s in self.streams for m in s.sent if event is None or m.get("event") == event]

    def received_events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [m for s in self.streams for m in s.received if event is None or m.get("event") == event]

    # ----- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> TwilioMediaCall:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hangup()

    async def start(self) -> None:
        """Connect, send `connected` and `start`, and start the clock (unless `pace=None`)."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self._send_lock = asyncio.Lock()
        await self._open(self.url, self.public_url, self.custom_parameters, self._first_stream_sid)
        if self.pace is not None:
            self._tick_task = asyncio.create_task(self._run_clock(), name="twilio-call-clock")

    async def _open(self, url: str, public_url: str, params: dict[str, str], stream_sid: str | None) -> None:
        signed = signature_url(public_url, self.signature_scheme)
        headers = dict(self.extra_headers)
        if self.sign_requests:
            headers["X-Twilio-Signature"] = sign(signed, None, self.auth_token)
        record = StreamRecord(stream_sid or _sid("MZ"), url, signed, dict(params), self.call_ms)
        self._ready = False
        self._ws = await websockets.connect(
            url,
            additional_headers=headers,
            user_agent_header=USER_AGENT,
            origin=None,
            compression=None,
            open_timeout=self.open_timeout,
            max_size=None,
            ping_interval=None,
        )
        self.streams.append(record)
        self._sequence = 0
        self._chunk = 0
        self._stream_start_tick = self.call_ms // FRAME_MS
        self._recv_task = asyncio.create_task(self._receive(self._ws, record), name="twilio-call-receive")
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
        await self._send(
            {
                "event": "start",
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": record.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": dict(params),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": record.stream_sid,
            }
        )
        record.opened_at = time.monotonic()
        self._ready = True

    async def hangup(self) -> None:
        """End the call as Twilio does when the caller hangs up: `stop`, then close the socket."""
        if self.ended:
            return
        self.ended = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        await self._close_stream("twilio")
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._fake_twilio is not None:  # the carrier side: the call is over
            with contextlib.suppress(KeyError):
                self._fake_twilio.set_call_status(self.call_sid, "completed")
        self._fail_waiters("the call ended before this audio was sent")
        await self._notify()

    def _fail_waiters(self, reason: str) -> None:
        for _, waiter in self._inbound_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(reason))
        self._inbound_waiters = []

    async def redirect(
        self, url: str, *, custom_parameters: Mapping[str, str] | None = None, public_url: str | None = None
    ) -> None:
        """What Twilio does when the call's TwiML is replaced by another `<Connect><Stream>`: `stop` and close
        this stream, drop its unplayed audio, and open a new stream (new streamSid, same callSid and clock)."""
        await self._close_stream("twilio")
        self._playback.clear()
        self._queued_total = self.played_total
        self.public_url = public_url or url
        self.url = url
        await self._open(url, self.public_url, dict(custom_parameters or {}), None)
        await self._notify()

    async def _close_stream(self, by: str) -> None:
        record = self.stream if self.streams else None
        ws = self._ws
        if record is None or ws is None:
            return
        self._ready = False
        if record.closed_by is None:
            record.closed_by = by
            record.stopped_ms = self.call_ms
            record.closed_at = time.monotonic()
            with contextlib.suppress(ConnectionClosed):
                await self._send(
                    {
                        "event": "stop",
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                        "streamSid": record.stream_sid,
                    }
                )
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1000)
        if self._recv_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._recv_task

    async def _linger(self, record: StreamRecord) -> None:
        """The stream ended from the service side: Twilio plays the TwiML after `<Connect>` (`linger_s`), then
        hangs up, unless a REST update opened a new stream meanwhile."""
        assert self.linger_s is not None
        await asyncio.sleep(self.linger_s)
        if not self.ended and self.streams and self.stream is record:
            await self.hangup()

    # ----- talking -----------------------------------------------------------------------------------

    async def play_ulaw(self, audio: bytes, *, wait: bool = True) -> None:
        """Queue 8 kHz μ-law audio for the caller to say; with `wait`, return once every frame of it is sent."""
        if wait and self.pace is None:
            raise RuntimeError("with a manual clock (pace=None) pass wait=False, then advance() the clock")
        self._inbound.extend(audio)
        self._inbound_total += len(audio)
        if not wait:
            return
        future = asyncio.get_running_loop().create_future()
        self._inbound_waiters.append((self._inbound_total, future))
        await future

    async def play_wav(self, wav: bytes, *, wait: bool = True) -> None:
        """Say a WAV file (any rate, channels and PCM/float/G.711 encoding; converted to 8 kHz μ-law)."""
        await self.play_ulaw(g711.wav_to_ulaw(wav), wait=wait)

    async def play_silence(self, seconds: float, *, wait: bool = True) -> None:
        await self.play_ulaw(SILENCE * int(seconds * 8000), wait=wait)

    async def send_dtmf(self, digit: str) -> None:
        """A key press, as Twilio reports it on a `<Connect><Stream>`."""
        await self._send(
            {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    # ----- the clock -------------------------------------------------------------------------------

    async def advance(self, ms: int) -> None:
        """Move the call clock by `ms` (whole 20 ms frames), in manual mode (`pace=None`)."""
        if self.pace is not None:
            raise RuntimeError("advance() is for manual clocks: construct the call with pace=None")
        for _ in range(max(1, -(-ms // FRAME_MS))):
            if self.ended or not self.connected:
                return
            await self._tick()
            await asyncio.sleep(0)

    async def _run_clock(self) -> None:
        assert self.pace is not None
        started = time.monotonic()
        ticks = 0
        while not self.ended:
            if self.connected:
                with contextlib.suppress(ConnectionClosed):  # the service hung up; a redirect may follow
                    await self._tick()
            ticks += 1
            delay = started + ticks * FRAME_MS / 1000 * self.pace - time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    async def _tick(self) -> None:
        """One 20 ms frame: send the caller's audio, play the service's, echo marks that were reached."""
        frame = bytes(self._inbound[:FRAME_BYTES])
        del self._inbound[:FRAME_BYTES]
        self._inbound_sent += len(frame)
        frame += SILENCE * (FRAME_BYTES - len(frame))
        self._chunk += 1
        timestamp = self.call_ms - self._stream_start_tick * FRAME_MS
        try:
            await self._send(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(timestamp),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self.frames_sent += 1
        finally:
            for target, waiter in list(self._inbound_waiters):
                if self._inbound_sent >= target and not waiter.done():
                    waiter.set_result(None)
            self._inbound_waiters = [(t, w) for t, w in self._inbound_waiters if not w.done()]
        self._play_frame()
        self.call_ms += FRAME_MS
        await self._echo_reached_marks()
        await self._notify()

    def _play_frame(self) -> None:
        played = bytes(self._playback[:FRAME_BYTES])
        del self._playback[:FRAME_BYTES]
        start = self.call_ms * BYTES_PER_MS
        if played:
            if self.segments and self.segments[-1][1] == start:
                self.segments[-1][1] = start + len(played)
            else:
                self.segments.append([start, start + len(played)])
        self.played_total += len(played)
        self.heard.extend(played + SILENCE * (FRAME_BYTES - len(played)))

    async def _echo_reached_marks(self) -> None:
        for mark in self.marks:
            if mark.echoed_ms is None and mark.position <= self.played_total:
                await self._echo(mark)

    async def _echo(self, mark: MarkRecord, *, cleared: bool = False) -> None:
        mark.echoed_ms = self.call_ms
        mark.cleared = cleared
        with contextlib.suppress(ConnectionClosed):
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": mark.name}})

    # ----- wire ------------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any], *, numbered: bool = True) -> None:
        ws = self._ws
        assert ws is not None and self._send_lock is not None, "call start() first"
        if numbered:
            self._sequence += 1
            # Twilio puts sequenceNumber right after `event`, as a string
            message = {
                "event": message["event"],
                "sequenceNumber": str(self._sequence),
                **{k: v for k, v in message.items() if k != "event"},
            }
        self.stream.sent.append(message)
        async with self._send_lock:
            await ws.send(json.dumps(message))

    async def _receive(self, ws: ClientConnection, record: StreamRecord) -> None:
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.protocol_errors.append(f"not JSON: {str(raw)[:80]!r}")
                    continue
                record.received.append(message)
                if record.closed_by is None:
                    await self._handle(message, record)
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            if record.closed_by is None:
                record.closed_by = "service"
                record.stopped_ms = self.call_ms
                record.closed_at = time.monotonic()
                self._ready = False
                self._fail_waiters("the service closed the stream before this audio was sent")
                if self.linger_s is not None and not self.ended:
                    self._linger_task = asyncio.create_task(self._linger(record), name="twilio-call-linger")
            if ws.close_code is not None:
                record.close_code = ws.close_code
                record.close_reason = ws.close_reason
            await self._notify()

    async def _handle(self, message: dict[str, Any], record: StreamRecord) -> None:
        event = message.get("event") if isinstance(message, dict) else None
        if event not in ("media", "mark", "clear"):
            self.protocol_errors.append(f"unsupported message {event!r}")
            return
        if message.get("streamSid") != record.stream_sid:
            self.protocol_errors.append(
                f"{event} for streamSid {message.get('streamSid')!r}, expected {record.stream_sid!r}"
            )
            return
        if event == "media":
            try:
                payload = base64.b64decode((message.get("media") or {}).get("payload", ""), validate=True)
            except (binascii.Error, ValueError, TypeError):
                self.protocol_errors.append("media payload is not base64")
                return
            self.received_media.append(
                ReceivedMedia(self.call_ms, time.monotonic(), payload, self._queued_total, record.stream_sid)
            )
            self._playback.extend(payload)
            self._queued_total += len(payload)
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if not isinstance(name, str):
                self.protocol_errors.append("mark without a name")
                return
            mark = MarkRecord(name, self.call_ms, self._queued_total)
            self.marks.append(mark)
            if mark.position <= self.played_total:  # nothing left to play before it: echoed at once
                await self._echo(mark)
        else:
            dropped = len(self._playback)
            self._playback.clear()
            self._queued_total = self.played_total
            pending = [m for m in self.marks if m.echoed_ms is None]
            for mark in pending:
                await self._echo(mark, cleared=True)
            self.clears.append(ClearRecord(self.call_ms, dropped, [m.name for m in pending]))

    # ----- waiting ----------------------------------------------------------------------------------

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
        """Wait until `predicate()` holds (checked after every tick and message); `limit_s` is only a hang guard."""
        assert self._changed is not None, "call start() first"
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_mark(self, name: str, limit_s: float = 10.0) -> MarkRecord:
        """The mark, once Twilio has echoed it (its audio has played, or a clear dropped it)."""
        await self.wait_until(lambda: any(m.name == name and m.echoed_ms is not None for m in self.marks), limit_s)
        return next(m for m in self.marks if m.name == name and m.echoed_ms is not None)

    async def wait_for_media(self, count: int = 1, limit_s: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.received_media) >= count, limit_s)

    async def wait_closed(self, limit_s: float = 10.0) -> StreamRecord:
        """The current stream, once the service (or a hangup) closed it."""
        await self.wait_until(
            lambda: self.stream.closed_by is not None and (self._recv_task is None or self._recv_task.done()), limit_s
        )
        return self.stream

    # ----- following the fake Twilio REST API ---------------------------------------------------------

    def follow(self, fake_twilio: Any) -> None:
        """React to REST updates of this call on a FakeTwilio, as the carrier would: new TwiML with a
        `<Stream>` (inline `Twiml`, or fetched from `Url` with a signed POST) redirects the stream;
        `Status=completed` hangs up. Works when the fake runs in another thread."""
        loop = asyncio.get_running_loop()

        def on_update(call_sid: str, update: dict[str, str]) -> None:
            if call_sid == self.call_sid:
                asyncio.run_coroutine_threadsafe(self._apply_update(dict(update)), loop)

        self._unsubscribe = fake_twilio.on_call_update(on_update)
        self._fake_twilio = fake_twilio

    async def _apply_update(self, update: dict[str, str]) -> None:
        try:
            if update.get("Status") in ("completed", "canceled"):
                await self.hangup()
                return
            twiml = update.get("Twiml")
            if twiml is None and update.get("Url"):
                params = {
                    "CallSid": self.call_sid,
                    "AccountSid": self.account_sid,
                    "CallStatus": "in-progress",
                    "Direction": "inbound",
                    "ApiVersion": "2010-04-01",
                }
                status, twiml = await post_webhook(update["Url"], params, self.auth_token)
                if status >= 400:
                    self.protocol_errors.append(f"TwiML fetch from {update['Url']} answered {status}")
                    return
            found = stream_from_twiml(twiml or "")
            if found is None:
                if twiml:  # TwiML without a stream: the stream ends and Twilio moves on
                    await self._close_stream("twilio")
                return
            url, params = found
            await self.redirect(self._local_url(url), custom_parameters=params, public_url=url)
        except Exception:  # noqa: BLE001 - a failed redirect is recorded, never raised into the fake's thread
            log.exception("TwilioMediaCall could not apply a call update")
            self.protocol_errors.append(f"could not apply update {update!r}")

    def _local_url(self, public: str) -> str:
        """Where to really connect for a public stream URL: same path and query on the current host."""
        current, target = urlsplit(self.url), urlsplit(public)
        return current._replace(path=target.path, query=target.query).geturl()


async def simulate_call(
    url: str,
    *,
    auth_token: str,
    audio: bytes | None = None,
    listen_s: float = 2.0,
    on_start: Callable[[TwilioMediaCall], Awaitable[None]] | None = None,
    **options: Any,
) -> TwilioMediaCall:
    """Play one call: connect, say `audio` (a WAV; silence if None), listen `listen_s` seconds of call time
    (or until the service hangs up), hang up, and return the finished call for inspection."""
    call = TwilioMediaCall(url, auth_token=auth_token, **options)
    await call.start()
    try:
        if on_start is not None:
            await on_start(call)
        if audio is not None:
            await call.play_wav(audio)
        await call.play_silence(listen_s)
    except (ConnectionError, ConnectionClosed):
        pass
    finally:
        await call.hangup()
    return call
