"""FakeRealtime: OpenAI's Realtime API (the GA interface) over a WebSocket at `GET /v1/realtime?model=...`.

Point the SDK at it with `AsyncOpenAI(api_key=fake.api_key, websocket_base_url=fake.ws_url)` and
`client.realtime.connect(model="gpt-realtime")`.

Behaviour is deterministic and driven by the audio: appended audio is decoded (pcm16 24 kHz, μ-law or
A-law 8 kHz), an energy VAD finds speech (`speech_started` after `vad_min_speech_ms` of voiced 10 ms frames,
`speech_stopped` after `silence_duration_ms` of unvoiced ones), the buffer is committed, transcribed from
registrations (`register_utterance`), and answered with a tone of `reply_audio_ms` in the session's output
format, a transcript, and `response.done` with usage - or with a function call (`register_tool_call`).
See fakes/README.md for the event sequences and what is approximated.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import functools
import json
import logging
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from fakes import g711
from fakes.base import FakeService
from fakes.openai_compat import OPENAI_ERRORS, count_tokens, error_json

log = logging.getLogger(__name__)

DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a human, but remember "
    "that you aren't a human and that you can't do human things in the real world. Your voice and personality "
    "should be warm and engaging, with a lively and playful tone."
)
BETA_MESSAGE = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
BETA_CLOSE_CODE = 4000
BETA_CLOSE_REASON = "invalid_request_error.beta_api_shape_disabled"
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"

SESSION_KEYS = {
    "type",
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "include",
    "tracing",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "truncation",
    "prompt",
    "reasoning",
    "parallel_tool_calls",
}
AUDIO_INPUT_KEYS = {"format", "transcription", "noise_reduction", "turn_detection"}
AUDIO_OUTPUT_KEYS = {"format", "voice", "speed"}
FORMATS = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
SEMANTIC_SILENCE_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}
CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)
_ALPHABET = string.ascii_letters + string.digits
FRAME_MS = 10


def new_id(prefix: str, length: int = 21) -> str:
    """An id shaped like the API's: `event_`, `item_`, `resp_`, `sess_` + 21 characters, `call_` + 16."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def expired_message(max_session_s: float) -> str:
    """The real `session_expired` text, e.g. "Your session hit the maximum duration of 60 minutes."."""
    return f"Your session hit the maximum duration of {max_session_s / 60:g} minutes."


# ----- registrations and records ---------------------------------------------------------------------


@dataclass
class Utterance:
    """A transcript for the next committed speech span whose duration lies in [min_ms, max_ms]."""

    transcript: str
    min_ms: float | None = None
    max_ms: float | None = None
    used: bool = False

    def matches(self, speech_ms: float) -> bool:
        return (self.min_ms is None or speech_ms >= self.min_ms) and (self.max_ms is None or speech_ms <= self.max_ms)


@dataclass
class ToolCallRule:
    contains: str
    name: str
    arguments: str
    reply: str | None = None


@dataclass
class ReplyRule:
    contains: str
    text: str
    audio_ms: int | None = None
    audio: bytes | None = None  # a WAV to speak instead of the tone


@dataclass
class RealtimeSessionRecord:
    """One WebSocket session as the fake saw it; `fake.sessions` hands out deep copies."""

    id: str
    model: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]
    opened_at: float = field(default_factory=time.time)
    config: dict[str, Any] = field(default_factory=dict)
    client_events: list[dict[str, Any]] = field(default_factory=list)
    server_events: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    ignored_items: list[dict[str, Any]] = field(default_factory=list)
    audio_in: bytearray = field(default_factory=bytearray)
    audio_in_ms: float = 0.0
    transcripts: list[str] = field(default_factory=list)
    truncations: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    beta_header: str | None = None
    rejected: str | None = None
    closed_by: str | None = None
    close_code: int | None = None
    fake_errors: list[str] = field(default_factory=list)
    first_audio_at: float | None = None  # time.time() of the first / latest `input_audio_buffer.append`
    last_audio_at: float | None = None

    @property
    def given_history(self) -> list[tuple[str, str]]:
        """(role, text) of every message the client created with `conversation.item.create`: the conversation a
        session was given (a handoff or a resumed call replays it), in order."""
        found = []
        for event in self.client_events_of("conversation.item.create"):
            item = event.get("item") or {}
            if item.get("type") == "message":
                text = "".join(str(p.get("text") or p.get("transcript") or "") for p in item.get("content") or [])
                found.append((str(item.get("role")), text))
        return found

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def client_event_types(self) -> list[str]:
        return [e.get("type", "") for e in self.client_events]

    @property
    def server_event_types(self) -> list[str]:
        return [e["type"] for e in self.server_events]

    def server_events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.server_events if e["type"] == event_type]

    def client_events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.client_events if e.get("type") == event_type]


class _ClientError(Exception):
    """A client mistake answered with an `error` event (the session stays open)."""

    def __init__(
        self, message: str, code: str | None = None, param: str | None = None, type_: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.param, self.type = message, code, param, type_


def _deep_merge(base: dict[str, Any], update: dict[str, Any], replace: tuple[str, ...] = ()) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in replace:
            merged[key] = _deep_merge(merged[key], value, replace)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _item_text(item: dict[str, Any]) -> str:
    """What a message item says: its text parts, or the transcripts of its audio parts."""
    parts = []
    for part in item.get("content") or []:
        if isinstance(part, dict):
            parts.append(part.get("text") or part.get("transcript") or "")
    return " ".join(p for p in parts if p)


# ----- the fake --------------------------------------------------------------------------------------


class FakeRealtime(FakeService):
    """State of a fake Realtime API account. Everything here is safe to call from any thread.

    `max_session_s`: when the session gets the `session_expired` error and close 1001 (default 3600).
    `reply_audio_ms`: length of each spoken reply unless a reply rule says otherwise.
    `audio_delta_ms`: audio per `response.output_audio.delta` (default 100 ms).
    `audio_pace`: wall seconds slept per second of generated audio (0 = as fast as possible, like a fast model).
    `vad_level`: RMS (fraction of full scale) that `threshold` 1.0 maps to; a frame is voiced when
    its RMS >= threshold * vad_level (0.5 -> 0.025, about -32 dBFS).
    `transcription_timing`: "before_response" (default) or "after_response" (after `response.created`, as
    the real server often does).
    """

    name = "openai-realtime"

    def __init__(
        self,
        api_key: str = "sk-fake-openai-key",
        *,
        max_session_s: float = 3600.0,
        reply_audio_ms: int = 1000,
        audio_delta_ms: int = 100,
        audio_pace: float = 0.0,
        vad_level: float = 0.05,
        vad_min_speech_ms: int = 30,
        transcription_timing: str = "before_response",
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_session_s = max_session_s
        self.reply_audio_ms = reply_audio_ms
        self.audio_delta_ms = audio_delta_ms
        self.audio_pace = audio_pace
        self.vad_level = vad_level
        self.vad_min_speech_ms = vad_min_speech_ms
        self.transcription_timing = transcription_timing
        self._utterances: list[Utterance] = []
        self._tool_rules: list[ToolCallRule] = []
        self._reply_rules: list[ReplyRule] = []
        self._sessions: list[RealtimeSessionRecord] = []
        self._connections: list[_Connection] = []
        self._stall_after: int | None = None
        self._utterance_count = 0

    @property
    def ws_url(self) -> str:
        """The SDK's `websocket_base_url`: `ws://127.0.0.1:<port>/v1` (the SDK appends `/realtime`)."""
        return self.base_url.replace("http://", "ws://", 1) + "/v1"

    # ----- registrations ------------------------------------------------------------------------

    def register_utterance(self, transcript: str, *, min_ms: float | None = None, max_ms: float | None = None) -> None:
        """Transcribe a committed speech span as `transcript`.

        Registrations are consumed once each, oldest first, by the first span whose speech duration (first to
        last voiced 10 ms frame) lies within [min_ms, max_ms]; without bounds, simply the next utterance.
        Unmatched spans become "Fake utterance <n> of <ms> ms.".
        """
        with self._lock:
            self._utterances.append(Utterance(transcript, min_ms, max_ms))

    def register_reply(
        self, contains: str, text: str, *, audio_ms: int | None = None, audio: bytes | None = None
    ) -> None:
        """Answer a user turn containing `contains` (case-insensitive) by saying `text`.

        The audio is `audio_ms` of a 440 Hz tone (default `reply_audio_ms`), or `audio`: a WAV of any rate,
        converted to the session's output format.
        """
        if audio is not None:
            g711.read_wav(audio)  # fail here, not in the middle of a session
        with self._lock:
            self._reply_rules.append(ReplyRule(contains.lower(), text, audio_ms, audio))

    def register_tool_call(
        self, contains: str, name: str, arguments: dict[str, Any] | str, *, reply: str | None = None
    ) -> None:
        """Make the response to a user turn containing `contains` a call of tool `name` (if the session or
        response declares it and tool_choice is not "none"). After the client's `function_call_output` and
        `response.create`, the fake says `reply` (default "Fake reply after <name>: <output>")."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        with self._lock:
            self._tool_rules.append(ToolCallRule(contains.lower(), name, args, reply))

    def stall_responses(self, after_deltas: int = 1) -> None:
        """Hold every response after `after_deltas` audio deltas until `release_responses()` or a cancel."""
        with self._lock:
            self._stall_after = after_deltas

    def release_responses(self) -> None:
        """Let stalled responses finish; later responses are no longer held."""
        with self._lock:
            self._stall_after = None
            connections = list(self._connections)
        for connection in connections:
            connection.threadsafe(connection.release_all)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._utterances.clear()
            self._tool_rules.clear()
            self._reply_rules.clear()
            self._sessions.clear()
            self._stall_after = None
            self._utterance_count = 0

    # ----- records --------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[RealtimeSessionRecord]:
        """Deep copies of every session's record, oldest first."""
        with self._lock:
            return copy.deepcopy(self._sessions)

    def session(self, index: int = -1) -> RealtimeSessionRecord:
        with self._lock:
            return copy.deepcopy(self._sessions[index])

    @property
    def open_sessions(self) -> list[str]:
        with self._lock:
            return [c.record.id for c in self._connections]

    # ----- injected disconnects ---------------------------------------------------------------------

    def expire(self, session_id: str | None = None) -> None:
        """End sessions now as the duration limit does: `error` session_expired, then close 1001."""
        self._each(session_id, lambda c: c.spawn(c.expire()))

    def drop(self, session_id: str | None = None) -> None:
        """Close the TCP connection of sessions without a close frame (the client sees 1006)."""
        self._each(session_id, lambda c: c.drop())

    def close_with_error(
        self,
        code: int = 1011,
        *,
        message: str = SERVER_ERROR_MESSAGE,
        error_type: str = "server_error",
        error_code: str | None = None,
        send_event: bool = True,
        session_id: str | None = None,
    ) -> None:
        """Optionally send an `error` event, then close sessions with close `code` (reason = `message`)."""
        self._each(session_id, lambda c: c.spawn(c.close_with_error(code, message, error_type, error_code, send_event)))

    def _each(self, session_id: str | None, action: Callable[[_Connection], Any]) -> None:
        with self._lock:
            targets = [c for c in self._connections if session_id is None or c.record.id == session_id]
        for connection in targets:
            connection.threadsafe(functools.partial(action, connection))

    # ----- plumbing ---------------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/v1/realtime", self.realtime)]

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        code: Any = ...,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        type_, default_code, default_message = OPENAI_ERRORS.get(status, ("server_error", None, "Error."))
        body = error_json(message or default_message, type_, param, default_code if code is ... else code)
        return web.json_response(
            body, status=status, headers={"x-request-id": f"req_{secrets.token_hex(16)}", **(headers or {})}
        )

    def error_response(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        return self.error(status, message, headers=headers)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        match = re.match(r"^\s*Bearer\s+(\S+)\s*$", request.headers.get("Authorization", ""), re.I)
        if not match:
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        key = match.group(1)
        if key != self.api_key:
            shown = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else key
            return self.error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
            )
        return None

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        model = request.query.get("model")
        if not model and "call_id" not in request.query:
            return self.error(400, "you must provide a model parameter", param="model")
        record = RealtimeSessionRecord(
            id=new_id("sess"),
            model=model,
            query={k: request.query.getall(k) for k in request.query},
            headers=dict(request.headers),
            beta_header=request.headers.get("OpenAI-Beta"),
        )
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024, autoclose=True)
        await ws.prepare(request)
        connection = _Connection(self, ws, record, request.transport)
        with self._lock:
            self._sessions.append(record)
            self._connections.append(connection)
        try:
            await connection.run()
        finally:
            with self._lock:
                self._connections.remove(connection)
                record.close_code = record.close_code if record.close_code is not None else ws.close_code
                record.closed_by = record.closed_by or "client"
        return ws

    # ----- helpers used by connections ---------------------------------------------------------------

    def _take_transcript(self, speech_ms: float) -> str:
        with self._lock:
            self._utterance_count += 1
            for utterance in self._utterances:
                if not utterance.used and utterance.matches(speech_ms):
                    utterance.used = True
                    return utterance.transcript
            return f"Fake utterance {self._utterance_count} of {int(round(speech_ms))} ms."

    def _rules(self) -> tuple[list[ToolCallRule], list[ReplyRule], int | None]:
        with self._lock:
            return list(self._tool_rules), list(self._reply_rules), self._stall_after


# ----- one WebSocket session -----------------------------------------------------------------------


@dataclass
class _Response:
    id: str
    params: dict[str, Any]
    in_conversation: bool
    kind: str = "audio"  # audio | text | function_call
    text: str = ""
    audio_ms: int = 0
    audio_out: np.ndarray | None = None  # registered reply audio at the output rate, else a tone is generated
    tool: ToolCallRule | None = None
    call_id: str = ""
    item: dict[str, Any] | None = None
    finished: bool = False
    status: str = "in_progress"
    audio_samples: int = 0
    transcript_sent: str = ""
    deltas: int = 0
    after_created: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class _Connection:
    """Session state and protocol for one WebSocket; runs entirely on the server's loop."""

    def __init__(
        self,
        fake: FakeRealtime,
        ws: web.WebSocketResponse,
        record: RealtimeSessionRecord,
        transport: asyncio.Transport | None,
    ) -> None:
        self.fake = fake
        self.ws = ws
        self.record = record
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.session = self._default_session()
        self.conversation_id = new_id("conv")
        self.items: list[dict[str, Any]] = []
        self.item_audio_ms: dict[str, float] = {}
        self.call_rules: dict[str, ToolCallRule] = {}
        self.turn_lock = asyncio.Lock()
        self.active: _Response | None = None
        self.cached_tokens = 0
        self.voice_locked = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        # input audio: time line, VAD state, and the uncommitted buffer
        self.audio_ms = 0.0
        self.leftover = np.zeros(0, dtype=np.int16)
        self.leftover_rate = 24_000
        self.pcm_remainder = b""
        self.buffer: list[tuple[int, np.ndarray]] = []
        self.buffer_start_ms = 0.0
        self.in_speech = False
        self.voiced_run_ms = 0.0
        self.run_start_ms = 0.0
        self.silence_ms = 0.0
        self.speech_start_ms = 0.0
        self.last_voiced_ms = 0.0
        self.pending_item_id: str | None = None
        self.output_phase = 0

    # ----- cross-thread entry points -----------------------------------------------------------

    def threadsafe(self, action: Callable[[], Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(action)
        except RuntimeError:  # loop already closed: the session is gone anyway
            pass

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def release_all(self) -> None:
        if self.active is not None:
            self.active.resume.set()

    def drop(self) -> None:
        self._mark_closed("drop", 1006)
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    # ----- records --------------------------------------------------------------------------------

    def _record(self, update: Callable[[RealtimeSessionRecord], None]) -> None:
        with self.fake._lock:
            update(self.record)

    def _mark_closed(self, by: str, code: int) -> None:
        def update(r: RealtimeSessionRecord) -> None:
            if r.closed_by is None:
                r.closed_by, r.close_code = by, code

        self._record(update)

    def _sync_items(self) -> None:
        snapshot = copy.deepcopy(self.items)
        self._record(lambda r: setattr(r, "items", snapshot))

    # ----- sending ----------------------------------------------------------------------------------

    async def emit(self, event_type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": event_type, "event_id": new_id("event"), **fields}
        self._record(lambda r: r.server_events.append(copy.deepcopy(event)))
        if not self.ws.closed and not self.closing:
            try:
                await self.ws.send_str(json.dumps(event))
            except (ConnectionError, RuntimeError):
                self.closing = True
        return event

    async def send_error(
        self,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        client_event_id: str | None = None,
    ) -> None:
        error = {"type": type_, "code": code, "message": message, "param": param, "event_id": client_event_id}
        self._record(lambda r: r.errors.append(dict(error)))
        await self.emit("error", error=error)

    # ----- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        if self.record.beta_header is not None and "realtime" in self.record.beta_header.lower():
            self._record(lambda r: setattr(r, "rejected", "beta_api_shape_disabled"))
            await self.send_error(BETA_MESSAGE, code="beta_api_shape_disabled")
            self._mark_closed("server:beta_api_shape_disabled", BETA_CLOSE_CODE)
            await self.ws.close(code=BETA_CLOSE_CODE, message=BETA_CLOSE_REASON.encode())
            return
        self._record(lambda r: setattr(r, "config", copy.deepcopy(self.session)))
        await self.emit("session.created", session=copy.deepcopy(self.session))
        self.spawn(self._expire_later())
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self.handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.send_error(
                        "Binary frames are not supported; send JSON text events.", code="invalid_value"
                    )
                if self.closing:
                    break
        finally:
            self.closing = True
            if self.active is not None:
                self.active.finished = True
                self.active.resume.set()
            for task in list(self.tasks):
                if task is not asyncio.current_task():
                    task.cancel()

    async def _expire_later(self) -> None:
        await asyncio.sleep(self.fake.max_session_s)
        await self.expire()

    async def expire(self) -> None:
        if self.closing:
            return
        message = expired_message(self.fake.max_session_s)
        await self._stop_responding()
        await self.send_error(message, code="session_expired")
        self._mark_closed("server:session_expired", 1001)
        self.closing = True
        await self.ws.close(code=1001, message=message.encode()[:123])

    async def close_with_error(
        self, code: int, message: str, error_type: str, error_code: str | None, send_event: bool
    ) -> None:
        if self.closing:
            return
        await self._stop_responding()
        if send_event:
            await self.send_error(message, type_=error_type, code=error_code)
        self._mark_closed("server:error", code)
        self.closing = True
        await self.ws.close(code=code, message=message.encode()[:123])

    async def _stop_responding(self) -> None:
        async with self.turn_lock:
            if self.active is not None:
                self.active.finished = True
                self.active.resume.set()

    # ----- dispatch ---------------------------------------------------------------------------------

    async def handle_text(self, data: str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            self._record(lambda r: r.client_events.append({"type": None, "raw": data[:1000]}))
            await self.send_error(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.",
                code="invalid_json",
            )
            return
        if not isinstance(event, dict):
            await self.send_error("Invalid event: expected a JSON object.", code="invalid_value")
            return
        self._record(lambda r: r.client_events.append(copy.deepcopy(event)))
        event_type = event.get("type")
        handler = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "conversation.item.create": self.on_item_create,
            "conversation.item.retrieve": self.on_item_retrieve,
            "conversation.item.truncate": self.on_item_truncate,
            "conversation.item.delete": self.on_item_delete,
            "response.create": self.on_response_create,
            "response.cancel": self.on_response_cancel,
            "output_audio_buffer.clear": self.on_output_clear,
        }.get(event_type)  # type: ignore[arg-type]
        try:
            if handler is None:
                supported = ", ".join(f"'{name}'" for name in CLIENT_EVENTS)
                raise _ClientError(
                    f"Invalid value: '{event_type}'. Supported values are: {supported}.", "invalid_value", "type"
                )
            await handler(event)
        except _ClientError as exc:
            await self.send_error(
                exc.message, type_=exc.type, code=exc.code, param=exc.param, client_event_id=event.get("event_id")
            )
        except Exception as exc:  # noqa: BLE001 - a bug in the fake must be visible, not a silent hang
            log.exception("FakeRealtime failed on %s", event_type)
            failure = f"{event_type}: {exc!r}"
            self._record(lambda r: r.fake_errors.append(failure))
            await self.send_error(SERVER_ERROR_MESSAGE, type_="server_error", client_event_id=event.get("event_id"))

    # ----- session ----------------------------------------------------------------------------------

    def _default_session(self) -> dict[str, Any]:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.record.id,
            "model": self.record.model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": int(time.time() + self.fake.max_session_s),
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24_000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": self._turn_detection_defaults({"type": "server_vad", "silence_duration_ms": 200}),
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": "marin", "speed": 1.0},
            },
            "include": None,
        }

    @staticmethod
    def _turn_detection_defaults(value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") == "semantic_vad":
            defaults = {
                "type": "semantic_vad",
                "eagerness": "auto",
                "create_response": True,
                "interrupt_response": True,
            }
        else:
            defaults = {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            }
        return {**defaults, **value}

    @staticmethod
    def _check_format(value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict) or value.get("type") not in FORMATS:
            shown = value.get("type") if isinstance(value, dict) else value
            raise _ClientError(
                f"Invalid value: '{shown}'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
                "invalid_value",
                f"{param}.type",
            )
        if value["type"] == "audio/pcm":
            if value.get("rate", 24_000) != 24_000:
                raise _ClientError(
                    f"Invalid value: {value.get('rate')}. Supported values are: 24000.",
                    "invalid_value",
                    f"{param}.rate",
                )
            return {"type": "audio/pcm", "rate": 24_000}
        return {"type": value["type"]}

    async def on_session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            raise _ClientError("Missing required parameter: 'session'.", "missing_required_parameter", "session")
        if "type" not in update:
            raise _ClientError(
                "Missing required parameter: 'session.type'.", "missing_required_parameter", "session.type"
            )
        if update["type"] != "realtime":
            raise _ClientError(
                f"Invalid value: '{update['type']}'. This session is a 'realtime' session.",
                "invalid_value",
                "session.type",
            )
        for key in update:
            if key not in SESSION_KEYS:
                raise _ClientError(f"Unknown parameter: 'session.{key}'.", "unknown_parameter", f"session.{key}")
        update = copy.deepcopy(update)
        audio = update.get("audio") or {}
        for side, keys in (("input", AUDIO_INPUT_KEYS), ("output", AUDIO_OUTPUT_KEYS)):
            part = audio.get(side) or {}
            for key in part:
                if key not in keys:
                    raise _ClientError(
                        f"Unknown parameter: 'session.audio.{side}.{key}'.",
                        "unknown_parameter",
                        f"session.audio.{side}.{key}",
                    )
            if "format" in part:
                part["format"] = self._check_format(part["format"], f"session.audio.{side}.format")
        turn = (audio.get("input") or {}).get("turn_detection", ...)
        if turn is not ... and turn is not None:
            if not isinstance(turn, dict) or turn.get("type") not in ("server_vad", "semantic_vad"):
                raise _ClientError(
                    "Invalid value for 'session.audio.input.turn_detection.type': supported values "
                    "are 'server_vad' and 'semantic_vad'.",
                    "invalid_value",
                    "session.audio.input.turn_detection.type",
                )
            audio["input"]["turn_detection"] = self._turn_detection_defaults(turn)
        voice = (audio.get("output") or {}).get("voice")
        if voice is not None and voice != self.session["audio"]["output"]["voice"] and self.voice_locked:
            raise _ClientError(
                "Cannot update a conversation's voice if assistant audio is present.",
                "cannot_update_voice",
                "session.audio.output.voice",
            )
        self.session = _deep_merge(
            self.session, update, replace=("turn_detection", "transcription", "format", "tools", "tool_choice")
        )
        snapshot = copy.deepcopy(self.session)
        self._record(lambda r: setattr(r, "config", snapshot))
        await self.emit("session.updated", session=copy.deepcopy(self.session))

    # ----- input audio ------------------------------------------------------------------------------

    def _input_format(self) -> tuple[str, int]:
        fmt = self.session["audio"]["input"]["format"]["type"]
        return fmt, FORMATS[fmt]

    def _decode(self, raw: bytes) -> tuple[np.ndarray, int]:
        fmt, rate = self._input_format()
        if fmt == "audio/pcmu":
            return g711.ulaw_decode(raw), rate
        if fmt == "audio/pcma":
            return g711.alaw_decode(raw), rate
        data = self.pcm_remainder + raw
        self.pcm_remainder = data[len(data) - len(data) % 2 :]
        return g711.pcm16_decode(data), rate

    async def on_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise _ClientError("Missing required parameter: 'audio'.", "missing_required_parameter", "audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _ClientError(
                "Invalid 'audio'. Expected base64-encoded audio bytes.", "invalid_value", "audio"
            ) from exc
        samples, rate = self._decode(raw)
        added_ms = samples.size * 1000 / rate

        received = time.time()

        def update(r: RealtimeSessionRecord) -> None:
            r.audio_in.extend(raw)
            r.audio_in_ms += added_ms
            if r.first_audio_at is None:
                r.first_audio_at = received
            r.last_audio_at = received

        self._record(update)
        if rate != self.leftover_rate:
            self.leftover, self.leftover_rate = np.zeros(0, dtype=np.int16), rate
        await self._run_vad(samples, rate)

    async def _run_vad(self, samples: np.ndarray, rate: int) -> None:
        turn = self.session["audio"]["input"]["turn_detection"]
        pending = np.concatenate([self.leftover, samples]) if self.leftover.size else samples
        frame = rate * FRAME_MS // 1000
        whole = pending.size - pending.size % frame
        self.leftover = pending[whole:]
        for start in range(0, whole, frame):
            # Whole 10 ms frames join the buffer as the VAD reaches them, so a commit mid-append splits exactly.
            samples_of_frame = pending[start : start + frame]
            self.buffer.append((rate, samples_of_frame))
            frame_start = self.audio_ms
            self.audio_ms += FRAME_MS
            if turn is None:
                continue
            threshold = float(turn.get("threshold", 0.5)) if turn["type"] == "server_vad" else 0.5
            voiced = g711.rms(samples_of_frame) >= threshold * self.fake.vad_level
            if not self.in_speech:
                if not voiced:
                    self.voiced_run_ms = 0.0
                    continue
                if self.voiced_run_ms == 0.0:
                    self.run_start_ms = frame_start
                self.voiced_run_ms += FRAME_MS
                if self.voiced_run_ms >= self.fake.vad_min_speech_ms:
                    await self._speech_started(turn)
            elif voiced:
                self.silence_ms = 0.0
                self.last_voiced_ms = self.audio_ms
            else:
                self.silence_ms += FRAME_MS
                if self.silence_ms >= self._silence_needed(turn):
                    await self._speech_stopped(turn)

    @staticmethod
    def _silence_needed(turn: dict[str, Any]) -> float:
        if turn["type"] == "semantic_vad":
            return SEMANTIC_SILENCE_MS.get(turn.get("eagerness") or "auto", 800)
        return float(turn.get("silence_duration_ms", 500))

    async def _speech_started(self, turn: dict[str, Any]) -> None:
        self.in_speech = True
        self.speech_start_ms = self.run_start_ms
        self.last_voiced_ms = self.audio_ms
        self.silence_ms = 0.0
        self.pending_item_id = new_id("item")
        padding = float(turn.get("prefix_padding_ms", 300)) if turn["type"] == "server_vad" else 300.0
        start_ms = max(self.buffer_start_ms, self.speech_start_ms - padding)
        await self.emit(
            "input_audio_buffer.speech_started", audio_start_ms=int(round(start_ms)), item_id=self.pending_item_id
        )
        active = self.active
        if active is not None and not active.finished and turn.get("interrupt_response", True):
            await self._cancel(active, "turn_detected")

    async def _speech_stopped(self, turn: dict[str, Any]) -> None:
        item_id = self.pending_item_id or new_id("item")
        speech_ms = self.last_voiced_ms - self.speech_start_ms
        self.in_speech = False
        self.voiced_run_ms = 0.0
        self.pending_item_id = None
        await self.emit("input_audio_buffer.speech_stopped", audio_end_ms=int(round(self.audio_ms)), item_id=item_id)
        await self._commit(item_id, speech_ms, auto_response=bool(turn.get("create_response", True)))

    def _buffer_ms(self) -> float:
        return sum(samples.size * 1000 / rate for rate, samples in self.buffer)

    def _speech_span(self) -> float:
        """First to last voiced frame of the uncommitted buffer, in ms (manual commits)."""
        voiced = [i for i, (_, samples) in enumerate(self.buffer) if g711.rms(samples) >= 0.5 * self.fake.vad_level]
        return float((voiced[-1] - voiced[0] + 1) * FRAME_MS) if voiced else self._buffer_ms()

    async def on_commit(self, event: dict[str, Any]) -> None:
        if self.leftover.size:  # a partial frame still counts when the client commits by hand
            self.buffer.append((self.leftover_rate, self.leftover))
            self.audio_ms += self.leftover.size * 1000 / self.leftover_rate
            self.leftover = np.zeros(0, dtype=np.int16)
        buffered = self._buffer_ms()
        if buffered < 100:
            raise _ClientError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer "
                f"only has {buffered:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        speech_ms = self._speech_span()
        item_id = self.pending_item_id or new_id("item")
        self.in_speech, self.voiced_run_ms, self.pending_item_id = False, 0.0, None
        await self._commit(item_id, speech_ms, auto_response=False)

    async def on_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        self.leftover = np.zeros(0, dtype=np.int16)
        self.in_speech, self.voiced_run_ms, self.silence_ms, self.pending_item_id = False, 0.0, 0.0, None
        self.buffer_start_ms = self.audio_ms
        await self.emit("input_audio_buffer.cleared")

    async def _commit(self, item_id: str, speech_ms: float, *, auto_response: bool) -> None:
        audio_ms = self._buffer_ms()
        self.buffer.clear()
        self.buffer_start_ms = self.audio_ms
        previous = self.items[-1]["id"] if self.items else None
        await self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(item)
        self.item_audio_ms[item_id] = audio_ms
        self._sync_items()
        await self.emit("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item))
        await self.emit("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))
        transcript = self.fake._take_transcript(speech_ms)
        item["content"][0]["transcript"] = transcript
        self._sync_items()
        self._record(lambda r: r.transcripts.append(transcript))
        transcription_events = self._transcription_events(item_id, transcript, audio_ms)
        active = self.active
        can_respond = auto_response and (active is None or active.finished)
        if can_respond and self.fake.transcription_timing == "after_response":
            await self._start_response({}, after_created=transcription_events)
            return
        for event_type, fields in transcription_events:
            await self.emit(event_type, **fields)
        if can_respond:
            await self._start_response({})

    def _transcription_events(self, item_id: str, transcript: str, audio_ms: float) -> list[tuple[str, dict]]:
        config = self.session["audio"]["input"].get("transcription")
        if not config:
            return []
        model = config.get("model") or "whisper-1"
        events: list[tuple[str, dict[str, Any]]] = []
        if model != "whisper-1":
            events.append(
                (
                    "conversation.item.input_audio_transcription.delta",
                    {"item_id": item_id, "content_index": 0, "delta": transcript},
                )
            )
            audio_tokens = max(1, int(audio_ms / 100))
            text_tokens = count_tokens(config.get("prompt") or "")
            output_tokens = count_tokens(transcript)
            usage: dict[str, Any] = {
                "type": "tokens",
                "total_tokens": audio_tokens + text_tokens + output_tokens,
                "input_tokens": audio_tokens + text_tokens,
                "output_tokens": output_tokens,
                "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
            }
        else:
            usage = {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
        events.append(
            (
                "conversation.item.input_audio_transcription.completed",
                {"item_id": item_id, "content_index": 0, "transcript": transcript, "usage": usage},
            )
        )
        return events

    # ----- conversation items -----------------------------------------------------------------------

    def _find(self, item_id: Any) -> int | None:
        return next((i for i, item in enumerate(self.items) if item["id"] == item_id), None)

    async def on_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise _ClientError("Missing required parameter: 'item'.", "missing_required_parameter", "item")
        item = copy.deepcopy(item)
        kind = item.get("type")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role not in ("user", "assistant", "system"):
                raise _ClientError(
                    f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', and 'system'.",
                    "invalid_value",
                    "item.role",
                )
            if not isinstance(content, list):
                raise _ClientError(
                    "Missing required parameter: 'item.content'.", "missing_required_parameter", "item.content"
                )
            types = [part.get("type") if isinstance(part, dict) else None for part in content]
            if role == "assistant" and any(t != "output_text" for t in types):
                # The GA API accepts these without a word and leaves them out of the conversation.
                self._record(lambda r: r.ignored_items.append(copy.deepcopy(item)))
                return
        elif kind == "function_call_output":
            for key in ("call_id", "output"):
                if not isinstance(item.get(key), str):
                    raise _ClientError(
                        f"Missing required parameter: 'item.{key}'.", "missing_required_parameter", f"item.{key}"
                    )
        elif kind == "function_call":
            for key in ("name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _ClientError(
                        f"Missing required parameter: 'item.{key}'.", "missing_required_parameter", f"item.{key}"
                    )
            item.setdefault("call_id", new_id("call", 16))
        else:
            raise _ClientError(
                f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', and "
                "'function_call_output'.",
                "invalid_value",
                "item.type",
            )
        item.setdefault("id", new_id("item"))
        item.update(object="realtime.item", status="completed")
        if self._find(item["id"]) is not None:
            raise _ClientError(f"Item with id '{item['id']}' already exists.", "item_id_already_exists", "item.id")
        previous_id = event.get("previous_item_id")
        if previous_id is None:
            previous = self.items[-1]["id"] if self.items else None
            self.items.append(item)
        elif previous_id == "root":
            previous = None
            self.items.insert(0, item)
        else:
            index = self._find(previous_id)
            if index is None:
                raise _ClientError(
                    f"Previous item with id '{previous_id}' not found.", "invalid_value", "previous_item_id"
                )
            previous = previous_id
            self.items.insert(index + 1, item)
        self._sync_items()
        await self.emit("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item))
        await self.emit("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))

    async def on_item_retrieve(self, event: dict[str, Any]) -> None:
        index = self._find(event.get("item_id"))
        if index is None:
            raise _ClientError(
                f"Item with item_id not found: {event.get('item_id')}", "item_retrieve_invalid_item_id", "item_id"
            )
        await self.emit("conversation.item.retrieved", item=copy.deepcopy(self.items[index]))

    async def on_item_delete(self, event: dict[str, Any]) -> None:
        index = self._find(event.get("item_id"))
        if index is None:
            raise _ClientError(
                f"Error deleting item: the item with id '{event.get('item_id')}' does not exist.",
                "item_delete_invalid_item_id",
                "item_id",
            )
        removed = self.items.pop(index)
        self._sync_items()
        await self.emit("conversation.item.deleted", item_id=removed["id"])

    async def on_item_truncate(self, event: dict[str, Any]) -> None:
        item_id, audio_end_ms = str(event.get("item_id")), event.get("audio_end_ms")
        index = self._find(item_id)
        if index is None:
            raise _ClientError(f"Item with item_id not found: {item_id}", "item_truncate_invalid_item_id", "item_id")
        if not isinstance(audio_end_ms, int) or audio_end_ms < 0:
            raise _ClientError(
                f"Invalid 'audio_end_ms': {audio_end_ms!r}. Expected a non-negative integer.",
                "invalid_value",
                "audio_end_ms",
            )
        item = self.items[index]
        content = item.get("content") or []
        has_audio = (
            item.get("role") == "assistant"
            and any(p.get("type") == "output_audio" for p in content)
            and self.item_audio_ms.get(item_id, 0) > 0
        )
        if not has_audio:
            raise _ClientError(
                "Only model output audio messages can be truncated", "unsupported_content_type", "item_id"
            )
        available = int(round(self.item_audio_ms[item_id]))
        if audio_end_ms > available:
            raise _ClientError(
                f"Audio content of {available}ms is already shorter than {audio_end_ms}ms",
                "invalid_value",
                "audio_end_ms",
            )
        self.item_audio_ms[item_id] = float(audio_end_ms)
        for part in content:
            if part.get("type") == "output_audio":
                part["transcript"] = ""  # the API drops the text the user never heard
        self._sync_items()
        truncation = {
            "item_id": item_id,
            "content_index": event.get("content_index", 0),
            "audio_end_ms": audio_end_ms,
            "audio_ms_before": available,
        }
        self._record(lambda r: r.truncations.append(truncation))
        await self.emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=event.get("content_index", 0),
            audio_end_ms=audio_end_ms,
        )

    async def on_output_clear(self, event: dict[str, Any]) -> None:
        raise _ClientError(
            "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.", "invalid_value", "type"
        )

    # ----- responses --------------------------------------------------------------------------------

    async def on_response_create(self, event: dict[str, Any]) -> None:
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise _ClientError("Invalid type for 'response': expected an object.", "invalid_type", "response")
        active = self.active
        if active is not None and not active.finished:
            raise _ClientError(
                f"Conversation already has an active response in progress: {active.id}. Wait until "
                "the response is finished before creating a new one.",
                "conversation_already_has_active_response",
            )
        await self._start_response(params)

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        active = self.active
        wanted = event.get("response_id")
        if active is None or active.finished or (wanted is not None and wanted != active.id):
            raise _ClientError("Cancellation failed: no active response found", "response_cancel_not_active")
        await self._cancel(active, "client_cancelled")

    def _response_params(self, params: dict[str, Any]) -> dict[str, Any]:
        session = self.session
        output = (params.get("audio") or {}).get("output") or {}
        fmt = (
            self._check_format(output["format"], "response.audio.output.format")
            if "format" in output
            else (session["audio"]["output"]["format"])
        )
        return {
            "output_modalities": params.get("output_modalities") or session["output_modalities"],
            "instructions": params.get("instructions", session["instructions"]),
            "tools": params.get("tools", session["tools"]) or [],
            "tool_choice": params.get("tool_choice", session["tool_choice"]),
            "conversation": params.get("conversation", "auto"),
            "metadata": params.get("metadata"),
            "format": fmt,
            "voice": output.get("voice", session["audio"]["output"]["voice"]),
            "max_output_tokens": params.get("max_output_tokens", session["max_output_tokens"]),
            "input": params.get("input"),
        }

    def _plan(self, response: _Response) -> None:
        """Decide what the model says: a tool call, a registered reply, or a reply to the last turn."""
        tool_rules, reply_rules, _ = self.fake._rules()
        params = response.params
        context = params["input"] if isinstance(params["input"], list) else self.items
        last = next(
            (
                i
                for i in reversed(context)
                if isinstance(i, dict)
                and i.get("type") in ("message", "function_call_output")
                and i.get("role") != "assistant"
            ),
            None,
        )
        response.audio_ms = self.fake.reply_audio_ms
        if last is not None and last.get("type") == "function_call_output":
            rule = self.call_rules.get(last.get("call_id", ""))
            name = rule.name if rule else "tool"
            response.text = (
                rule.reply if rule and rule.reply else None
            ) or f"Fake reply after {name}: {last.get('output', '')}"
        else:
            said = _item_text(last) if last is not None else ""
            lowered = said.lower()
            declared = {t.get("name") for t in params["tools"] if isinstance(t, dict)}
            choice = params["tool_choice"]
            forced = choice.get("name") if isinstance(choice, dict) else None
            if choice != "none":
                for rule in tool_rules:
                    if rule.contains in lowered and rule.name in declared and forced in (None, rule.name):
                        response.kind, response.tool = "function_call", rule
                        response.call_id = new_id("call", 16)
                        return
            reply = next((r for r in reply_rules if r.contains in lowered), None)
            if reply is not None:
                response.text = reply.text
                response.audio_ms = reply.audio_ms if reply.audio_ms is not None else response.audio_ms
                if reply.audio is not None:
                    samples, source_rate = g711.read_wav(reply.audio)
                    rate = FORMATS[params["format"]["type"]]
                    response.audio_out = g711.to_int16(g711.resample(samples, source_rate, rate))
                    response.audio_ms = int(round(response.audio_out.size * 1000 / rate))
            else:
                response.text = f"Fake reply to: {said}" if said else "Fake reply."
        if "audio" not in params["output_modalities"]:
            response.kind = "text"

    async def _start_response(
        self, params: dict[str, Any], after_created: list[tuple[str, dict[str, Any]]] | None = None
    ) -> None:
        resolved = self._response_params(params)
        response = _Response(
            new_id("resp"),
            resolved,
            in_conversation=resolved["conversation"] != "none",
            after_created=after_created or [],
        )
        self._plan(response)
        self.active = response
        async with self.turn_lock:
            await self._emit_created(response)
        response.task = asyncio.ensure_future(self._stream(response))
        self.tasks.add(response.task)
        response.task.add_done_callback(self.tasks.discard)

    def _response_object(
        self,
        response: _Response,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        status_details: dict[str, Any] | None = None,
    ) -> dict:
        params = response.params
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": status_details,
            "output": output,
            "conversation_id": self.conversation_id if response.in_conversation else None,
            "output_modalities": params["output_modalities"],
            "max_output_tokens": params["max_output_tokens"],
            "audio": {"output": {"format": params["format"], "voice": params["voice"]}},
            "usage": usage,
            "metadata": params["metadata"],
        }

    async def _emit_created(self, response: _Response) -> None:
        await self.emit("response.created", response=self._response_object(response, "in_progress", [], None))
        for event_type, fields in response.after_created:
            await self.emit(event_type, **fields)
        item_id = new_id("item")
        if response.kind == "function_call":
            assert response.tool is not None
            item: dict[str, Any] = {
                "id": item_id,
                "type": "function_call",
                "object": "realtime.item",
                "status": "in_progress",
                "name": response.tool.name,
                "call_id": response.call_id,
                "arguments": "",
            }
        else:
            item = {
                "id": item_id,
                "type": "message",
                "object": "realtime.item",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        response.item = item
        await self.emit("response.output_item.added", response_id=response.id, output_index=0, item=copy.deepcopy(item))
        if response.in_conversation:
            previous = self.items[-1]["id"] if self.items else None
            self.items.append(item)
            self.item_audio_ms[item_id] = 0.0
            self._sync_items()
            await self.emit("conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item))
        if response.kind != "function_call":
            part = {"type": "audio", "transcript": ""} if response.kind == "audio" else {"type": "text", "text": ""}
            item["content"] = [
                {"type": "output_audio", "transcript": ""}
                if response.kind == "audio"
                else {"type": "output_text", "text": ""}
            ]
            await self.emit(
                "response.content_part.added",
                response_id=response.id,
                item_id=item_id,
                output_index=0,
                content_index=0,
                part=part,
            )

    def _chunks(self, response: _Response) -> list[str]:
        """The pieces the response streams: base64 audio deltas, text deltas or argument deltas."""
        if response.kind == "function_call":
            assert response.tool is not None
            args = response.tool.arguments
            return [args[i : i + 16] for i in range(0, len(args), 16)] or [""]
        if response.kind == "text":
            words = response.text.split(" ")
            return [w if i == 0 else " " + w for i, w in enumerate(words)]
        count = max(1, -(-response.audio_ms // self.fake.audio_delta_ms))
        return [""] * count

    def _audio_delta(self, response: _Response, index: int, count: int) -> tuple[str, int]:
        fmt = response.params["format"]["type"]
        rate = FORMATS[fmt]
        if response.audio_out is not None:
            per_delta = rate * self.fake.audio_delta_ms // 1000
            samples = response.audio_out[index * per_delta : (index + 1) * per_delta]
        else:
            ms = min(self.fake.audio_delta_ms, response.audio_ms - index * self.fake.audio_delta_ms)
            samples = g711.tone(ms, rate, phase_samples=self.output_phase)
            self.output_phase += samples.size
        encoded = (
            g711.ulaw_encode(samples)
            if fmt == "audio/pcmu"
            else g711.alaw_encode(samples)
            if fmt == "audio/pcma"
            else g711.pcm16_encode(samples)
        )
        return base64.b64encode(encoded).decode(), samples.size

    async def _stream(self, response: _Response) -> None:
        pieces = self._chunks(response)
        words = response.text.split(" ") if response.kind == "audio" and response.text else []
        for index, piece in enumerate(pieces):
            _, _, stall_after = self.fake._rules()
            if stall_after is not None and index == stall_after and not response.finished:
                response.resume.clear()
                await response.resume.wait()
            async with self.turn_lock:
                if response.finished:
                    return
                await self._emit_piece(response, index, piece, pieces, words)
            pace = self.fake.audio_pace * self.fake.audio_delta_ms / 1000 if response.kind == "audio" else 0
            await asyncio.sleep(pace)
        async with self.turn_lock:
            if not response.finished:
                await self._finish(response, "completed")

    async def _emit_piece(
        self, response: _Response, index: int, piece: str, pieces: list[str], words: list[str]
    ) -> None:
        assert response.item is not None
        item_id = response.item["id"]
        common = {"response_id": response.id, "item_id": item_id, "output_index": 0}
        response.deltas += 1
        if response.kind == "function_call":
            response.item["arguments"] += piece
            await self.emit("response.function_call_arguments.delta", **common, call_id=response.call_id, delta=piece)
            return
        if response.kind == "text":
            response.transcript_sent += piece
            await self.emit("response.output_text.delta", **common, content_index=0, delta=piece)
            return
        # words run a little ahead of the audio, as the real transcript does
        due = -(-len(words) * (index + 1) // len(pieces))
        said = len(response.transcript_sent.split(" ")) if response.transcript_sent else 0
        if due > said:
            delta = " ".join(words[said:due])
            delta = delta if said == 0 else " " + delta
            response.transcript_sent += delta
            await self.emit("response.output_audio_transcript.delta", **common, content_index=0, delta=delta)
        audio, samples = self._audio_delta(response, index, len(pieces))
        response.audio_samples += samples
        rate = FORMATS[response.params["format"]["type"]]
        if response.in_conversation:
            self.item_audio_ms[item_id] = response.audio_samples * 1000 / rate
        self.voice_locked = True
        await self.emit("response.output_audio.delta", **common, content_index=0, delta=audio)

    async def _cancel(self, response: _Response, reason: str) -> None:
        async with self.turn_lock:
            if not response.finished:
                await self._finish(response, "cancelled", reason)
        response.resume.set()

    async def _finish(self, response: _Response, status: str, reason: str | None = None) -> None:
        """The closing events of a response; caller holds turn_lock."""
        response.finished = True
        response.status = status
        item = response.item
        assert item is not None
        common = {"response_id": response.id, "item_id": item["id"], "output_index": 0}
        item["status"] = "completed" if status == "completed" else "incomplete"
        if response.kind == "function_call":
            if status == "completed":
                await self.emit(
                    "response.function_call_arguments.done",
                    **common,
                    call_id=response.call_id,
                    name=item["name"],
                    arguments=item["arguments"],
                )
                assert response.tool is not None
                self.call_rules[response.call_id] = response.tool
        elif response.kind == "text":
            item["content"] = [{"type": "output_text", "text": response.transcript_sent}]
            await self.emit("response.output_text.done", **common, content_index=0, text=response.transcript_sent)
            await self.emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "text", "text": response.transcript_sent},
            )
        else:
            transcript = response.text if status == "completed" else response.transcript_sent
            item["content"] = [{"type": "output_audio", "transcript": transcript}]
            await self.emit("response.output_audio.done", **common, content_index=0)
            await self.emit("response.output_audio_transcript.done", **common, content_index=0, transcript=transcript)
            await self.emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "audio", "transcript": transcript},
            )
        await self.emit("response.output_item.done", response_id=response.id, output_index=0, item=copy.deepcopy(item))
        if response.in_conversation and self._find(item["id"]) is not None:
            self._sync_items()
            index = self._find(item["id"])
            previous = self.items[index - 1]["id"] if index else None
            await self.emit("conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item))
        usage = self._usage(response)
        details = None if status == "completed" else {"type": "cancelled", "reason": reason}
        final = self._response_object(response, status, [copy.deepcopy(item)], usage, details)
        self._record(lambda r: r.responses.append(copy.deepcopy(final)))
        await self.emit("response.done", response=final)

    def _usage(self, response: _Response) -> dict[str, Any]:
        params = response.params
        text_in = count_tokens(params["instructions"] or "") + count_tokens(json.dumps(params["tools"]))
        audio_in = 0
        for item in self.items:
            if item is response.item:
                continue
            if item.get("type") == "message" and item.get("role") in ("user", "system"):
                text_parts = [p.get("text") or "" for p in item.get("content") or [] if p.get("type") == "input_text"]
                text_in += count_tokens(" ".join(text_parts))
                audio_in += int(self.item_audio_ms.get(item["id"], 0) / 100)  # ~10 tokens per second of input
            elif item.get("type") == "message":
                text_in += count_tokens(_item_text(item))
                audio_in += int(self.item_audio_ms.get(item["id"], 0) / 50)
            else:
                text_in += count_tokens(item.get("arguments") or item.get("output") or "")
        input_tokens = text_in + audio_in
        cached = min(self.cached_tokens, input_tokens) // 64 * 64
        self.cached_tokens = input_tokens
        cached_text = min(cached, text_in)
        rate = FORMATS[params["format"]["type"]]
        audio_out = int(response.audio_samples * 1000 / rate / 50) if response.kind == "audio" else 0
        if response.kind == "function_call":
            text_out = count_tokens(response.item["arguments"] if response.item else "")
        else:
            text_out = count_tokens(response.transcript_sent if response.status != "completed" else response.text)
        return {
            "total_tokens": input_tokens + text_out + audio_out,
            "input_tokens": input_tokens,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached - cached_text,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
