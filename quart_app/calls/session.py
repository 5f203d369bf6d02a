"""One phone call: a Twilio Media Stream relayed to a speech-to-speech session, with explicit state.

    session = CallSession(info, config, options, twilio=sender, connector=connector, recorder=..., ...)
    session.begin()                          # after Twilio's `start`: opens the provider session in the background
    await session.media(payload, timestamp)  # every inbound frame (μ-law base64, Twilio's stream timestamp)
    await session.mark(name); await session.dtmf(digit)
    await session.end("caller_hangup")       # Twilio `stop` or the socket closing; idempotent

State:
- the **call clock** `now_ms`: Twilio's inbound `timestamp`, which advances 20 ms per frame for as long as the
  call lasts. Session age, the tenant's call-length cap and hang-up deadlines run on it, so they follow the
  call, and a simulated call on a manual clock behaves the same at any speed.
- **playback** (`Playback`): audio chunks sent, their marks, and what the caller has heard.
- **turn**: a response in progress, the caller speaking, tools running, a response wanted.
- **phase**: connecting → live ⇄ switching → (ending →) ended. While connecting or switching, caller audio
  is buffered, then delivered in order to the new session: none is dropped.

A switch (`_switch`) replaces the provider session: opened and configured like the first, given the
conversation so far (`handoff.replay_history`), then the buffered audio, then it takes over. It runs for the
planned handoff before the provider's session limit (at a turn boundary), and, once, to recover a session the
provider closed. If recovery fails, the caller hears an apology and the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ..db.call_transcripts import TranscriptItem
from .audio_path import AudioPath, b64_length
from .control import CallControl
from .handoff import dtmf_text, replay_history
from .playback import Playback
from .records import CallRecorder
from .speech import (
    AssistantText,
    AudioDelta,
    ResponseDone,
    ResponseStarted,
    Role,
    SpeechConfig,
    SpeechConnector,
    SpeechError,
    SpeechEvent,
    SpeechSession,
    SpeechStarted,
    SpeechStopped,
    SpeechUnavailable,
    ToolCall,
    UserText,
)
from .tools import KnowledgeBase, arguments, search_result

log = logging.getLogger(__name__)

MAX_BUFFERED_FRAMES = 3000  # 60 s of caller audio held while a session opens or switches
RECOVERY_COOLDOWN_MS = 10_000  # a session that dies again this soon after a recovery is not recovered again
CLOSE_TIMEOUT_S = 1.0  # a provider session is closed within this long after the call ends
TRANSCRIPT_WAIT_MS = 10_000  # a handoff waits this long (call time) for the caller's last turn to be transcribed


class TwilioSide:
    """What a call needs of the Media Streams socket (the edge implements it)."""

    async def send(self, text: str) -> None:
        raise NotImplementedError

    async def close(self, code: int, reason: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class CallInfo:
    call_sid: str
    stream_sid: str
    account_sid: str | None
    tenant_id: str
    from_number: str | None
    to_number: str | None
    stream_url: str | None = None  # the public URL Twilio opened this stream at (a move reconnects there)


@dataclass(frozen=True)
class CallOptions:
    max_session_ms: int
    handoff_grace_ms: int
    wrapup_ms: int
    hangup_grace_ms: int
    knowledge_results: int = 3
    max_call_ms: int | None = None  # the tenant's cap
    greeting: str | None = None
    apology_twiml: str | None = None  # replaces the call's TwiML when the call cannot go on


WRAP_UP_TEXT = (
    "The call has reached its maximum length and will end in {seconds} seconds. Wrap up now: briefly tell the "
    "caller you have to end the call, say goodbye, then call end_call."
)
GREETING_TEXT = "The caller has just been connected. Greet them now by saying: {greeting}"


class CallSession:
    def __init__(
        self,
        info: CallInfo,
        config: SpeechConfig,
        options: CallOptions,
        *,
        twilio: TwilioSide,
        connector: SpeechConnector,
        recorder: CallRecorder,
        control: CallControl,
        knowledge: KnowledgeBase,
        audio: AudioPath,
        history: Sequence[TranscriptItem] = (),
        first_seq: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_finished: Callable[[CallSession], None] | None = None,
        resumed: bool = False,
        clock_offset_ms: int = 0,
    ) -> None:
        self.info = info
        self.config = config
        self.options = options
        self.twilio = twilio
        self.connector = connector
        self.recorder = recorder
        self.control = control
        self.knowledge = knowledge
        self.audio = audio
        self.clock = clock
        self.on_finished = on_finished
        # phase and provider session
        self.phase = "new"  # new | connecting | live | switching | ending | ended
        self.speech: SpeechSession | None = None
        self.sessions_opened = 0
        self.session_started_ms = 0
        self.end_reason: str | None = None
        self._began_at = self.clock()
        self.ended = asyncio.Event()
        self._buffer: deque[str] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recovered_at_ms: int | None = None
        self._handoff_failed_until_ms = 0
        self._lost = False  # the current session closed while a switch was delivering audio to it
        self._undelivered: list[tuple[Role, str]] = []  # texts for the model while no session was live
        # the call clock and counters
        # a resumed call's clock goes on from where it was (each stream's timestamps start at 0)
        self.clock_offset_ms = clock_offset_ms
        self.now_ms = clock_offset_ms
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.twilio_messages = 0  # media, mark and clear messages sent to Twilio
        self.provider_bytes = 0  # caller audio (decoded bytes) delivered to the current provider session
        # playback
        self.playback = Playback()
        self._generated_ms: dict[str, float] = {}  # item -> ms of audio the provider generated
        self._interrupted: set[str] = set()  # items cut by a barge-in: their late deltas are dropped
        self._first_audio_ms: dict[str, int] = {}  # item -> call ms of its first audio
        self._audio_item: str | None = None  # the item whose audio was sent last
        # turn
        self.response_active = False
        self._response_requested = False
        self._want_response = False
        self._response_audio: set[str] = set()  # responses that produced audio
        self.user_speaking = False
        self._speech_started_ms: dict[str, int] = {}
        self._tools_running = 0
        self._stopped_at: float | None = None
        self._latency_ms: dict[str, int] = {}
        self.last_latency_ms: int | None = None
        self.latencies_ms: list[int] = []
        # ending
        self._hangup_requested = False
        self._goodbye_asked = False  # end_call came alone: the next response is the goodbye
        self._hangup_mark: str | None = None
        self._hangup_deadline_ms: int | None = None
        self._hanging_up = False
        self._hangup_scheduled = False
        self._wrapup_sent = False
        self._ending_reason: str | None = None  # why a hang-up is underway (agent, max_duration, drain)
        # transcript (in memory; also written to the database as it grows)
        self.transcript: list[TranscriptItem] = list(history)
        self._seq = max(first_seq, max((i.seq for i in history), default=-1) + 1)
        self._resumed = resumed or bool(history)  # a call continued from elsewhere: no greeting
        self.moving = False  # Twilio was asked to move the call to another instance: its `stop` means "moved"

    # ----- lifecycle -----------------------------------------------------------------------------------

    def begin(self) -> None:
        """Record the call and open the provider session in the background (audio is buffered meanwhile)."""
        self.phase = "connecting"
        self._began_at = self.clock()
        self.recorder.started(
            stream_sid=self.info.stream_sid,
            tenant_id=self.info.tenant_id,
            from_number=self.info.from_number,
            to_number=self.info.to_number,
            account_sid=self.info.account_sid,
            started_at=time.time(),
            stream_url=self.info.stream_url,
        )
        self._spawn(self._connect(), "connect")

    async def _connect(self) -> None:
        try:
            speech = await self.connector.open(self.config, replay_history(self.transcript))
        except SpeechUnavailable as exc:
            log.warning("call %s: no speech session: %s", self.info.call_sid, exc)
            await self._fail("provider_unavailable")
            return
        if self.phase == "ended":
            await speech.close()
            return
        await self._take_over(speech)
        if self.options.greeting and not self._resumed:
            await self._say_system(GREETING_TEXT.format(greeting=self.options.greeting), record=False)

    async def _take_over(self, speech: SpeechSession) -> None:
        """Make `speech` the call's session: deliver the buffered audio in order, then go live."""
        old = self.speech
        self.speech = speech
        self.provider_bytes = 0
        self._lost = False
        self.sessions_opened += 1
        self.session_started_ms = self.now_ms
        self.recorder.session_opened()
        self.response_active = self._response_requested = False
        self._spawn(self._read(speech), "read")
        await self._deliver_buffer(speech)
        if old is not None:
            self._spawn(self._close_quietly(old), "close-old")
        while self._undelivered and self.phase == "live":  # a key press or instruction during the switch
            role, text = self._undelivered.pop(0)
            with contextlib.suppress(ConnectionError):
                await speech.add_text(role, text)
        if self.phase == "live":
            log.info(
                "call %s: speech session %d (%s) is live (%d ms after the stream started)",
                self.info.call_sid,
                self.sessions_opened,
                speech.session_id,
                round((self.clock() - self._began_at) * 1000),
            )
            await self._maybe_respond()

    async def _deliver_buffer(self, speech: SpeechSession) -> None:
        """Send the held caller audio in order, then go live (frames arriving meanwhile join the buffer, so
        the last check that it is empty and going live happen with no await in between)."""
        try:
            while self._buffer:
                audio = self.audio.inbound(self._buffer.popleft())
                self.provider_bytes += b64_length(audio)
                await speech.send_audio(audio)
        except ConnectionError:
            self._lost = True
        if self.phase in ("connecting", "switching"):
            self.phase = "live"
            if self._lost:
                self._lost = False
                self._recover()

    async def end(self, reason: str) -> None:
        """End the call: the provider session closes at once, the record is finished. Idempotent."""
        if self.phase == "ended":
            return
        if self._hanging_up and self._ending_reason and reason in ("caller_hangup", "stream_closed"):
            reason = self._ending_reason  # Twilio's `stop` after our own hang-up
        elif self.moving and reason in ("caller_hangup", "stream_closed"):
            reason = "moved"  # Twilio's `stop` after we moved the call: it goes on elsewhere
        self.phase = "ended"
        self.end_reason = reason
        log.info(
            "call %s ended (%s): %d frames in, %d out, %d sessions",
            self.info.call_sid,
            reason,
            self.frames_in,
            self.frames_out,
            self.sessions_opened,
        )
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self.speech is not None:
            await self._close_quietly(self.speech)
        self.recorder.ended(reason, time.time())
        if self.on_finished is not None:
            self.on_finished(self)
        try:
            await self.recorder.close()
        finally:
            self.ended.set()  # the record is complete (or could not be completed)

    async def _close_quietly(self, speech: SpeechSession) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(speech.close(), CLOSE_TIMEOUT_S)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"call-{self.info.call_sid}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task %s failed", self.info.call_sid, task.get_name(), exc_info=task.exception())
            if self.phase != "ended":
                self._spawn(self._fail("error"), "fail")

    # ----- from Twilio -------------------------------------------------------------------------------

    async def media(self, payload: str, timestamp: int) -> None:
        """One inbound frame: to the provider, or into the buffer while a session opens or switches."""
        self.now_ms = timestamp + self.clock_offset_ms
        self.frames_in += 1
        if self.phase == "live" and self.speech is not None:
            try:
                audio = self.audio.inbound(payload)
                self.provider_bytes += b64_length(audio)
                await self.speech.send_audio(audio)
            except ConnectionError:
                self._hold(payload)  # the provider is gone: the recovery delivers it
                self._provider_lost(self.speech)
        elif self.phase in ("connecting", "switching", "new"):
            self._hold(payload)
        self._on_clock()

    def _hold(self, payload: str) -> None:
        if len(self._buffer) >= MAX_BUFFERED_FRAMES:
            self._buffer.popleft()
            self.frames_dropped += 1
        self._buffer.append(payload)

    async def mark(self, name: str) -> None:
        self.playback.echoed(name, self.now_ms)
        if name == self._hangup_mark:
            await self._hang_up_now()

    async def dtmf(self, digit: str) -> None:
        if not digit or len(digit) > 2:
            return
        self._remember("dtmf", digit)
        await self._tell("user", dtmf_text(digit))
        self._want_response = True
        await self._maybe_respond()

    # ----- the call clock ------------------------------------------------------------------------------

    def _on_clock(self) -> None:
        now = self.now_ms
        if self.phase == "live":
            age = now - self.session_started_ms
            if age >= self.options.max_session_ms and now >= self._handoff_failed_until_ms:
                forced = age >= self.options.max_session_ms + self.options.handoff_grace_ms
                if forced or self.at_turn_boundary():
                    self.phase = "switching"
                    self._spawn(self._switch("handoff" if not forced else "forced_handoff"), "handoff")
        cap = self.options.max_call_ms
        if cap is not None and self.phase != "ended":
            if not self._wrapup_sent and now >= cap - self.options.wrapup_ms:
                self._wrapup_sent = True
                self._ending_reason = self._ending_reason or "max_duration"
                seconds = max(1, round((cap - now) / 1000))
                self._spawn(self._say_system(WRAP_UP_TEXT.format(seconds=seconds)), "wrap-up")
            elif now >= cap and not self._hangup_scheduled:
                self._ending_reason = "max_duration"
                self._hangup_scheduled = True
                self._spawn(self._hang_up_now(), "cap")
        if self._hangup_deadline_ms is not None and now >= self._hangup_deadline_ms and not self._hangup_scheduled:
            self._hangup_scheduled = True
            self._spawn(self._hang_up_now(), "hangup-deadline")

    def at_turn_boundary(self) -> bool:
        """Nothing in flight that a new session would not know about."""
        awaiting_transcript = any(
            self.now_ms - started < TRANSCRIPT_WAIT_MS for started in self._speech_started_ms.values()
        )
        return not (
            awaiting_transcript
            or self.response_active
            or self._response_requested
            or self.user_speaking
            or self._tools_running
            or self._want_response
            or self._hangup_requested
            or self.playback.playing(self.now_ms)
        )

    # ----- from the provider -------------------------------------------------------------------------

    async def _read(self, speech: SpeechSession) -> None:
        try:
            async for event in speech.events():
                if speech is not self.speech or self.phase == "ended":
                    continue  # an old session winding down after a switch
                try:
                    await self._on_event(event)
                except Exception:  # one event handled wrongly must not end the call
                    log.exception("call %s: could not handle %s", self.info.call_sid, type(event).__name__)
        finally:
            self._provider_lost(speech)

    def _provider_lost(self, speech: SpeechSession) -> None:
        """`speech` closed (or failed a send). Recover if it is the call's session and nothing else is."""
        if speech is not self.speech or self.phase in ("ending", "ended"):
            return
        if self.phase in ("connecting", "switching"):
            self._lost = True  # `_deliver_buffer` recovers once the switch in progress has finished
            return
        if not self._lost:
            log.warning(
                "call %s: the provider closed speech session %s (%s)",
                self.info.call_sid,
                speech.session_id,
                speech.close_code,
            )
            self._lost = True
            self._recover()

    async def _on_event(self, event: SpeechEvent) -> None:
        if isinstance(event, AudioDelta):
            await self._audio(event)
        elif isinstance(event, SpeechStarted):
            await self._barge_in(event)
        elif isinstance(event, SpeechStopped):
            self.user_speaking = False
            self._stopped_at = self.clock()
        elif isinstance(event, ResponseStarted):
            self.response_active = True
            self._response_requested = False
            self._want_response = False  # this response sees everything added so far
        elif isinstance(event, ResponseDone):
            await self._response_done(event)
        elif isinstance(event, UserText):
            self._remember("user", event.text, self._speech_started_ms.pop(event.item_id, self.now_ms), event.item_id)
        elif isinstance(event, AssistantText):
            self._remember(
                "assistant",
                event.text,
                self._first_audio_ms.get(event.item_id, self.now_ms),
                event.item_id,
                interrupted=event.interrupted or event.item_id in self._interrupted,
                latency_ms=self._latency_ms.pop(event.item_id, None),
            )
        elif isinstance(event, ToolCall):
            self._tool(event)
        elif isinstance(event, SpeechError):
            if event.fatal:
                log.warning("call %s: provider error %s: %s", self.info.call_sid, event.code, event.message)
                if self.speech is not None:
                    self._provider_lost(self.speech)
            else:
                log.info("call %s: provider error %s: %s", self.info.call_sid, event.code, event.message)

    async def _audio(self, event: AudioDelta) -> None:
        item = event.item_id
        if item in self._interrupted:
            return  # a late delta of the item the caller cut off
        payload, samples, generated_ms = self.audio.outbound(event.audio)
        self._generated_ms[item] = self._generated_ms.get(item, 0.0) + generated_ms
        self._response_audio.add(event.response_id)
        if item not in self._first_audio_ms:
            self._first_audio_ms[item] = self.now_ms
            if self._stopped_at is not None:
                latency = round((self.clock() - self._stopped_at) * 1000)
                self._stopped_at = None
                self._latency_ms[item] = latency
                self.last_latency_ms = latency
                self.latencies_ms.append(latency)
        if samples:
            self._audio_item = item
            await self._send_chunk(item, payload, samples)

    async def _send_chunk(self, item: str, payload: str, samples: int) -> None:
        sid = self.info.stream_sid
        name = self.playback.sent(item, samples, self.now_ms)
        self.twilio_messages += 2
        self.frames_out += 1
        await self.twilio.send('{"event":"media","streamSid":"' + sid + '","media":{"payload":"' + payload + '"}}')
        await self.twilio.send('{"event":"mark","streamSid":"' + sid + '","mark":{"name":"' + name + '"}}')

    async def _barge_in(self, event: SpeechStarted) -> None:
        self.user_speaking = True
        self._stopped_at = None
        if event.item_id:
            self._speech_started_ms[event.item_id] = self.now_ms
        if not self.playback.playing(self.now_ms):
            return  # nothing left to cut: playback already finished
        self.twilio_messages += 1
        await self.twilio.send('{"event":"clear","streamSid":"' + self.info.stream_sid + '"}')
        cut, markers = self.playback.clear(self.now_ms)
        for interrupted in cut:
            self._interrupted.add(interrupted.item_id)
            generated = int(self._generated_ms.get(interrupted.item_id, 0.0))
            end_ms = min(interrupted.heard_ms, generated)
            if end_ms >= generated:
                continue  # all of it was heard: nothing to truncate
            if self.speech is not None:
                with contextlib.suppress(ConnectionError):
                    await self.speech.truncate(interrupted.item_id, end_ms)
            log.info(
                "call %s: barge-in, %s truncated at %d of %d ms",
                self.info.call_sid,
                interrupted.item_id,
                end_ms,
                generated,
            )
        if self._hangup_mark in markers:
            await self._hang_up_now()

    async def _response_done(self, event: ResponseDone) -> None:
        self.response_active = False
        if event.usage is not None:
            self.recorder.usage(event.usage)
        spoke = event.response_id in self._response_audio
        if spoke:
            tail = self.audio.flush()  # what a resampler still holds (nothing for μ-law passthrough)
            item = self._audio_item
            if tail and item is not None and item not in self._interrupted:
                await self._send_chunk(item, tail, b64_length(tail))
        if self._hangup_requested and self._hangup_mark is None:
            if spoke or event.had_audio or self._goodbye_asked:
                await self._place_hangup_mark()  # the goodbye (if any) is queued before this mark
            else:
                self._goodbye_asked = True  # end_call came before any goodbye: let the agent say it
                self._want_response = True
        self._response_audio.discard(event.response_id)
        await self._maybe_respond()

    async def _maybe_respond(self) -> None:
        """Ask for a response when one is wanted and nothing is in the way."""
        if not self._want_response or self.phase != "live" or self.speech is None:
            return
        if self.response_active or self._response_requested or self.user_speaking or self._tools_running:
            return
        self._want_response = False
        self._response_requested = True
        with contextlib.suppress(ConnectionError):
            await self.speech.respond()

    async def _say_system(self, text: str, *, record: bool = True) -> None:
        """Give the agent an instruction mid-call and have it respond."""
        if record:
            self._remember("system", text)
        await self._tell("system", text)
        self._want_response = True
        await self._maybe_respond()

    async def _tell(self, role: Role, text: str) -> None:
        """Add a text item to the live session, or keep it for the next session (opening or switching)."""
        if self.phase == "live" and self.speech is not None:
            with contextlib.suppress(ConnectionError):
                await self.speech.add_text(role, text)
        elif self.phase in ("new", "connecting", "switching"):
            self._undelivered.append((role, text))

    # ----- tools -----------------------------------------------------------------------------------------

    def _tool(self, call: ToolCall) -> None:
        if call.name == "end_call":
            self._hangup_requested = True
            self._ending_reason = self._ending_reason or "agent_end_call"
            self._hangup_deadline_ms = self.now_ms + self.options.hangup_grace_ms
            self._remember("tool", f"end_call({call.arguments})")
            self._tools_running += 1
            self._spawn(
                self._tool_output(call, json.dumps({"ok": True, "note": "The call ends after your goodbye."})), "tool"
            )
        elif call.name == "search_knowledge":
            self._tools_running += 1
            self._spawn(self._search(call), "tool")
        else:
            self._tools_running += 1
            self._spawn(
                self._tool_output(call, json.dumps({"error": f"unknown tool {call.name}"}), respond=True), "tool"
            )

    async def _search(self, call: ToolCall) -> None:
        query = str(arguments(call.arguments).get("query") or "").strip()
        try:
            passages = await self.knowledge.search(self.info.tenant_id, query, self.options.knowledge_results)
            output = search_result(query, passages)
            self._remember("tool", f"search_knowledge({query!r}): {len(passages)} passages")
        except Exception as exc:  # noqa: BLE001 - the agent is told, the call goes on
            log.warning("call %s: knowledge search failed: %s", self.info.call_sid, exc)
            output = json.dumps({"query": query, "error": "The knowledge base is unavailable right now."})
        await self._tool_output(call, output, respond=True)

    async def _tool_output(self, call: ToolCall, output: str, *, respond: bool = False) -> None:
        try:
            speech = self.speech
            if self.phase == "live" and speech is not None:
                with contextlib.suppress(ConnectionError):
                    await speech.tool_result(call.call_id, output)
            if respond:
                self._want_response = True
        finally:
            self._tools_running -= 1
        await self._maybe_respond()

    # ----- hanging up ------------------------------------------------------------------------------------

    async def _place_hangup_mark(self) -> None:
        """Hang up once everything sent so far (the goodbye) has played: Twilio echoes this mark then."""
        self._hangup_mark = self.playback.marker("hangup")
        self._hangup_deadline_ms = min(self._hangup_deadline_ms or 2**62, self.now_ms + self.options.hangup_grace_ms)
        self.twilio_messages += 1
        await self.twilio.send(
            '{"event":"mark","streamSid":"' + self.info.stream_sid + '","mark":{"name":"' + self._hangup_mark + '"}}'
        )

    async def _hang_up_now(self) -> None:
        """Hang up through Twilio's REST API; without it, close the stream (Twilio then runs the TwiML after
        `<Connect>`, which says goodbye and hangs up)."""
        if self._hanging_up or self.phase == "ended":
            return
        self._hanging_up = True
        log.info("call %s: hanging up (%s)", self.info.call_sid, self._ending_reason or "agent_end_call")
        if not await self.control.hang_up(self.info.call_sid):
            await self.twilio.close(1000, "call ended")
            await self.end(self._ending_reason or "agent_end_call")
        # else Twilio sends `stop` and closes the stream: `end()` follows from the edge

    @property
    def hanging_up(self) -> bool:
        """The agent ended the call (`end_call`) or a hang-up is underway."""
        return self._hanging_up or self._hangup_requested

    def movable(self) -> bool:
        """Nothing is in flight that a move would lose: a turn boundary, and no hang-up underway."""
        return self.phase == "live" and not self.hanging_up and self.at_turn_boundary()

    async def end_with_apology(self, reason: str) -> None:
        """End the call now with the spoken apology (replacing its TwiML through Twilio REST); without REST,
        close the stream (Twilio runs the TwiML after `<Connect>`: the apology and a hang-up)."""
        if self.phase == "ended":
            return
        self.moving = False
        said = False
        if self.options.apology_twiml:
            said = await self.control.replace_twiml(self.info.call_sid, self.options.apology_twiml)
        with contextlib.suppress(Exception):
            await self.twilio.close(1000 if said else 1001, "the service is restarting")
        await self.end(reason)

    async def cut(self, reason: str) -> None:
        """End the call from this side now (drain deadline, shutdown): close the stream (Twilio then runs the
        TwiML after `<Connect>`: an apology and a hang-up) and finish the record."""
        if self.phase == "ended":
            return
        with contextlib.suppress(Exception):
            await self.twilio.close(1001, "the service is restarting")
        await self.end(reason)

    async def _fail(self, reason: str) -> None:
        """The call cannot go on: the caller hears an apology, then the call ends."""
        if self.phase == "ended":
            return
        log.warning("call %s: ending with an apology (%s)", self.info.call_sid, reason)
        self.phase = "ending"
        said = False
        if self.options.apology_twiml:
            said = await self.control.replace_twiml(self.info.call_sid, self.options.apology_twiml)
        if not said:
            await self.twilio.close(1011, "the agent is unavailable")  # the TwiML after <Connect> apologises
        await self.end(reason)

    # ----- switching sessions ----------------------------------------------------------------------------

    def _recover(self) -> None:
        """The provider closed the session: one attempt to carry on in a new one."""
        if self.phase != "live":
            return
        recent = self._recovered_at_ms is not None and self.now_ms - self._recovered_at_ms < RECOVERY_COOLDOWN_MS
        if recent:
            self.phase = "ending"
            self._spawn(self._fail("provider_failed"), "fail")
            return
        self._recovered_at_ms = self.now_ms
        self.phase = "switching"
        self._spawn(self._switch("recovery"), "recover")

    async def _switch(self, why: str) -> None:
        log.info("call %s: switching speech session (%s) at %d ms", self.info.call_sid, why, self.now_ms)
        if why == "recovery":
            # what the old session was doing is gone with it
            self.response_active = self._response_requested = False
            self.user_speaking = False
            self._want_response = self._want_response or self._tools_running > 0
        try:
            speech = await self.connector.open(self.config, replay_history(self.transcript))
        except SpeechUnavailable as exc:
            if why == "recovery":
                log.warning("call %s: recovery failed: %s", self.info.call_sid, exc)
                await self._fail("provider_failed")
                return
            # a planned handoff: the old session still works; go on with it and try again a little later
            log.warning("call %s: handoff failed, retrying in 10 s: %s", self.info.call_sid, exc)
            self._handoff_failed_until_ms = self.now_ms + RECOVERY_COOLDOWN_MS
            await self._resume_old()
            return
        if self.phase == "ended":
            await speech.close()
            return
        await self._take_over(speech)

    async def _resume_old(self) -> None:
        if self.speech is not None:
            await self._deliver_buffer(self.speech)

    # ----- transcript --------------------------------------------------------------------------------------

    def _remember(
        self,
        role: str,
        text: str,
        call_ms: int | None = None,
        item_id: str | None = None,
        *,
        interrupted: bool = False,
        latency_ms: int | None = None,
    ) -> None:
        item = TranscriptItem(
            call_sid=self.info.call_sid,
            seq=self._seq,
            role=role,
            text=text,
            call_ms=self.now_ms if call_ms is None else call_ms,
            at=time.time(),
            item_id=item_id,
            interrupted=interrupted,
            latency_ms=latency_ms,
        )
        self._seq += 1
        self.transcript.append(item)
        self.recorder.transcript(item)

    # ----- health ------------------------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        return {
            "call_sid": self.info.call_sid,
            "phase": self.phase,
            "call_s": round(self.now_ms / 1000, 1),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "marks_pending": self.playback.pending_marks,
            "last_latency_ms": self.last_latency_ms,
            "sessions": self.sessions_opened,
        }
