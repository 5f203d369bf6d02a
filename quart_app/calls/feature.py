"""The realtime-calls feature: every live phone call of this process.

    calls = RealtimeCalls(settings, database, connector=..., control=..., knowledge=..., apology_twiml=...)
    reason = calls.refusal()                              # None, or why a new call cannot be taken here
    session = calls.open_call(info, tenant, twilio_side)  # a CallSession, tracked until it ends

Every REALTIME_HEALTH_LOG_S one health line per live call is logged (frames in and out, marks pending, last
turn latency). The drain moves every live call to another instance (#22): it first tells the peers this instance
is draining (`/health` is already 503), then, for each call at a turn boundary (at most CALLS_MOVE_WAIT_S later),
replaces the call's TwiML through Twilio REST with `<Connect><Stream>` to the public stream URL and
`resume_call`; Twilio stops the old stream (the call ends here as `moved`, its provider session closed) and opens
a new one, which the load balancer gives to a ready instance, where the call resumes from its stored record.
With no other ready instance, calls stay until shortly before the drain deadline and then end with the spoken
apology (`drain_limit`). `cluster.py` holds the heartbeat, the peers and the recovery of calls lost in a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import aiohttp

from ..db.call_transcripts import TranscriptItem
from ..db.handle import DatabaseHandle
from ..db.tenants import Tenant
from ..providers.realtime import RealtimeClient
from ..settings import Settings, secret
from .audio_path import audio_path
from .cluster import UNAVAILABLE, CallCluster, StreamTwiml
from .control import CallControl, NoCallControl, TwilioCallControl
from .openai_speech import OpenAISpeech
from .records import CallRecorder
from .session import CallInfo, CallOptions, CallSession, TwilioSide
from .speech import AudioFormat, SpeechConfig, SpeechConnector
from .tools import DatabaseKnowledge, KnowledgeBase, tools_for

log = logging.getLogger(__name__)

PHONE_GUIDANCE = (
    "You are speaking with a caller on the telephone. Keep answers short and conversational; never use "
    "formatting, lists or emoji. If the caller presses a key you are told which one. When the conversation is "
    "over, say goodbye and then call end_call."
)
KNOWLEDGE_GUIDANCE = (
    " Before answering a question about the business, call search_knowledge and answer from its results; if "
    "they do not cover the question, say you do not know."
)
DRAIN_MARGIN_S = 1.0  # time kept before the drain deadline to close the streams that are left


def speech_config(settings: Settings, tenant: Tenant) -> SpeechConfig:
    """The tenant's session configuration: the same bytes for every session of every call of the tenant."""
    guidance = PHONE_GUIDANCE + (KNOWLEDGE_GUIDANCE if tenant.knowledge_enabled else "")
    fmt: AudioFormat = "pcm16" if (tenant.audio_format or settings.realtime_audio_format) == "pcm16" else "pcmu"
    return SpeechConfig(
        model=tenant.model or settings.realtime_model,
        instructions=f"{tenant.instructions.strip()}\n\n{guidance}",
        voice=tenant.voice or settings.realtime_voice,
        audio_format=fmt,
        turn_detection=dict(tenant.turn_detection),
        transcription_model=settings.realtime_transcribe_model or None,
        tools=tools_for(tenant.knowledge_enabled),
    )


def openai_connector(settings: Settings) -> SpeechConnector | None:
    """The OpenAI Realtime connector when OPENAI_API_KEY is set (at OPENAI_REALTIME_URL, e.g. a fake)."""
    if settings.openai_api_key is None:
        return None
    client = RealtimeClient(
        secret(settings.openai_api_key),
        base_url=settings.openai_base_url,
        websocket_base_url=settings.openai_realtime_url,
        connect_timeout=settings.realtime_connect_timeout_s,
    )
    return OpenAISpeech(client, ready_timeout=settings.realtime_connect_timeout_s)


def twilio_control(settings: Settings, http: aiohttp.ClientSession) -> CallControl:
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        return NoCallControl()
    return TwilioCallControl(
        http,
        account_sid=settings.twilio_account_sid,
        auth_token=secret(settings.twilio_auth_token),
        base_url=settings.twilio_api_base_url,
    )


class RealtimeCalls:
    name = "realtime-calls"

    def __init__(
        self,
        settings: Settings,
        database: DatabaseHandle,
        *,
        connector: SpeechConnector | None,
        control: CallControl,
        knowledge: KnowledgeBase | None = None,
        apology_twiml: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        stream_twiml: StreamTwiml | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.connector = connector
        self.control = control
        self.knowledge = knowledge or DatabaseKnowledge(database)
        self.apology_twiml = apology_twiml
        self.clock = clock
        self.calls: dict[str, CallSession] = {}
        self.closing = False
        self.started_total = 0
        self._ended_frames = (0, 0)  # frames in and out of the calls that have ended
        self._background: set[asyncio.Future[None]] = set()
        self._health_task: asyncio.Task[None] | None = None
        self.cluster = CallCluster(settings, database, control, stream_twiml=stream_twiml)
        self.moved_total = 0

    # ----- calls -------------------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why this process cannot take a new call right now (None: it can)."""
        if self.closing:
            return "draining"
        if self.connector is None:
            return "provider_unconfigured"
        if len(self.calls) >= self.settings.realtime_max_calls:
            return "at_capacity"
        return None

    def options_for(self, tenant: Tenant) -> CallOptions:
        s = self.settings
        return CallOptions(
            max_session_ms=int(s.realtime_max_session_s * 1000),
            handoff_grace_ms=int(s.realtime_handoff_grace_s * 1000),
            wrapup_ms=int(s.realtime_wrapup_s * 1000),
            hangup_grace_ms=int(s.realtime_hangup_grace_s * 1000),
            knowledge_results=s.realtime_knowledge_results,
            max_call_ms=tenant.max_call_s * 1000 if tenant.max_call_s else None,
            greeting=tenant.greeting or None,
            apology_twiml=self.apology_twiml,
        )

    def open_call(
        self,
        info: CallInfo,
        tenant: Tenant,
        twilio: TwilioSide,
        history: Sequence[TranscriptItem] = (),
        first_seq: int = 0,
        resumed: bool = False,
        clock_offset_ms: int = 0,
    ) -> CallSession:
        """A tracked CallSession for a stream that has started (`begin()` it). `history`: a stored transcript
        to resume from (the call continues a conversation begun elsewhere); `first_seq`: the first transcript
        number free for this call (a call may stream more than once)."""
        assert self.connector is not None, "check refusal() first"
        config = speech_config(self.settings, tenant)
        session = CallSession(
            info,
            config,
            self.options_for(tenant),
            twilio=twilio,
            connector=self.connector,
            recorder=CallRecorder(self.database, info.call_sid, self.settings.instance_id),
            control=self.control,
            knowledge=self.knowledge,
            audio=audio_path(config.audio_format),
            history=history,
            first_seq=first_seq,
            clock=self.clock,
            on_finished=self._finished,
            resumed=resumed,
            clock_offset_ms=clock_offset_ms,
        )
        previous = self.calls.get(info.call_sid)
        if previous is not None:  # Twilio opened a new stream for the same call: the new one wins
            ending = asyncio.ensure_future(previous.end("replaced"))
            self._background.add(ending)
            ending.add_done_callback(self._background.discard)
        self.calls[info.call_sid] = session
        self.started_total += 1
        return session

    def _finished(self, session: CallSession) -> None:
        if self.calls.get(session.info.call_sid) is session:
            del self.calls[session.info.call_sid]
        frames_in, frames_out = self._ended_frames
        self._ended_frames = (frames_in + session.frames_in, frames_out + session.frames_out)

    def frames_relayed(self) -> tuple[int, int]:
        """Media frames relayed by this process since it started (Twilio → provider, provider → Twilio)."""
        live = list(self.calls.values())
        return (
            self._ended_frames[0] + sum(s.frames_in for s in live),
            self._ended_frames[1] + sum(s.frames_out for s in live),
        )

    # ----- health ------------------------------------------------------------------------------------

    def health_lines(self) -> list[str]:
        lines = []
        for session in list(self.calls.values()):
            h = session.health()
            lines.append(
                f"call {h['call_sid']} {h['phase']} at {h['call_s']} s: frames in {h['frames_in']} out "
                f"{h['frames_out']}, marks pending {h['marks_pending']}, last latency {h['last_latency_ms']} ms, "
                f"provider sessions {h['sessions']}"
            )
        return lines

    async def _log_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.realtime_health_log_s)
            for line in self.health_lines():
                log.info("%s", line)

    # ----- feature -----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.connector is None:
            log.info("realtime calls: OPENAI_API_KEY is not set; /twilio/voice answers with an apology")
        self._health_task = asyncio.create_task(self._log_health(), name="realtime-calls-health")
        if self.connector is None:
            self.cluster.state = UNAVAILABLE  # alive (its calls are not lost) but no call is moved here
        await self.cluster.start()

    async def drain(self, deadline: float) -> None:
        """Refuse new calls; move every live call to a ready peer (checked again while calls are left); end
        what is left shortly before `deadline` with the apology."""
        self.closing = True
        with contextlib.suppress(Exception):
            await self.cluster.set_draining()  # before any call update: peers no longer count on this instance
        sessions = list(self.calls.values())
        if not sessions:
            return
        loop = asyncio.get_running_loop()
        limit = deadline - DRAIN_MARGIN_S
        log.info("draining %d live calls", len(sessions))
        moves: list[asyncio.Task[bool]] = []
        attempted: set[str] = set()
        announced = False
        while loop.time() < limit:
            live = [s for s in sessions if not s.ended.is_set()]
            if not live:
                break
            unmoved = [s for s in live if s.info.call_sid not in attempted]
            if self.cluster.can_move and unmoved and await self.cluster.ready_peers():
                for session in unmoved:
                    attempted.add(session.info.call_sid)
                    moves.append(asyncio.create_task(self._move(session, limit), name="move-call"))
            elif not announced and not attempted:
                log.warning("no other instance takes calls: %d calls stay until the drain limit", len(live))
                announced = True
            waiting = [asyncio.ensure_future(s.ended.wait()) for s in live]
            await asyncio.wait(
                waiting,
                timeout=max(0.0, min(self.settings.calls_heartbeat_s, limit - loop.time())),
                return_when=asyncio.ALL_COMPLETED,
            )
            for task in waiting:
                task.cancel()
        for move in moves:
            move.cancel()
        left = [s for s in sessions if not s.ended.is_set()]
        if left:
            log.warning("drain limit: %d calls end with an apology", len(left))
        await asyncio.gather(*(s.end_with_apology("drain_limit") for s in left), return_exceptions=True)

    async def _move(self, session: CallSession, limit: float) -> bool:
        """Move one call: at a turn boundary (or once CALLS_MOVE_WAIT_S has passed), replace its TwiML with the
        resume stream. Twilio's `stop` then ends it here (`moved`). False if it could not be moved."""
        loop = asyncio.get_running_loop()
        wait_until = min(limit, loop.time() + self.settings.calls_move_wait_s)
        while not session.ended.is_set() and not session.movable() and loop.time() < wait_until:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # the session's turn state has no event to wait on
        if session.ended.is_set() or session.hanging_up:
            return False  # the call is ending anyway
        info = session.info
        twiml = self.cluster.resume_twiml(
            info.call_sid,
            tenant_id=info.tenant_id,
            from_number=info.from_number,
            to_number=info.to_number,
            stream_url=info.stream_url,
        )
        session.moving = True  # Twilio's `stop` may arrive before its REST answer
        moved = twiml is not None and await self.control.replace_twiml(info.call_sid, twiml)
        session.moving = moved
        if moved:
            self.moved_total += 1
            log.info("call %s: moving to another instance at %d ms", info.call_sid, session.now_ms)
        else:
            log.warning("call %s: could not be moved; it stays until the drain limit", info.call_sid)
        return moved

    async def stop(self) -> None:
        self.closing = True
        await self.cluster.stop()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await asyncio.gather(*(s.cut("shutdown") for s in list(self.calls.values())), return_exceptions=True)
        if self.connector is not None:
            with contextlib.suppress(Exception):
                await self.connector.close()
