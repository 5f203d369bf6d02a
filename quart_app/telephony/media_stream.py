"""`/twilio/media-stream`: Twilio Media Streams (bidirectional, `<Connect><Stream>`) relayed to the agent.

    upgrade  X-Twilio-Signature over the stream URL (wss://), checked by `refuse_unsigned_stream` (close 1008);
             exempt from CORS: Twilio sends no Origin header
    in       connected, start {streamSid, callSid, customParameters {tenant, caller, called, call_sid},
             mediaFormat}, media {payload, timestamp}, mark {name}, dtmf {digit}, stop
    out      media {payload}, mark {name}, clear

Everything the call does is in `quart_app.calls.CallSession`; this module only frames messages. The socket
is tracked for the drain; Twilio's `stop` or the socket closing ends the provider session at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from quart import Blueprint, websocket
from quart_cors import cors_exempt

from ..auth.twilio_signature import public_url, websocket_url
from ..calls.feature import RealtimeCalls
from ..calls.records import load_transcript
from ..calls.session import CallInfo, CallSession, TwilioSide
from ..db import call_transcripts, calls, tenants
from ..db.call_transcripts import TranscriptItem
from ..errors import APIError
from ..resources import TrackedSocket
from ..web.state import feature, resources
from .guards import refuse_unsigned_stream

log = logging.getLogger(__name__)

blueprint = Blueprint("twilio_media", __name__)

KIND = "media-stream"  # the plain-socket kind in /health's connection counts
TRY_AGAIN_LATER = 1013
MAX_MESSAGE_CHARS = 64 * 1024


class TwilioSocket(TwilioSide):
    """The Media Streams socket as a call's sender: usable from the call's tasks until the handler ends."""

    def __init__(self) -> None:
        self._send = websocket.send
        self._close = websocket.close
        self.open = True

    async def send(self, text: str) -> None:
        if not self.open:
            return
        try:
            await self._send(text)
        except Exception:  # noqa: BLE001 - the socket went away; the handler ends the call
            self.open = False

    async def close(self, code: int, reason: str) -> None:
        if not self.open:
            return
        self.open = False
        with contextlib.suppress(Exception):
            await self._close(code, reason)


class Relay:
    """One Media Streams connection: dispatches Twilio's messages to its CallSession."""

    def __init__(self, realtime: RealtimeCalls, twilio: TwilioSocket) -> None:
        self.realtime = realtime
        self.twilio = twilio
        self.session: CallSession | None = None

    async def handle(self, raw: str) -> bool:
        """Handle one message; False once Twilio said `stop`."""
        try:
            message = json.loads(raw)
            event = message["event"]
            if event == "media":
                if self.session is not None:
                    media = message["media"]
                    await self.session.media(media["payload"], int(media["timestamp"]))
            elif event == "mark":
                if self.session is not None:
                    await self.session.mark(str(message["mark"]["name"]))
            elif event == "dtmf":
                if self.session is not None:
                    await self.session.dtmf(str(message["dtmf"]["digit"]))
            elif event == "start":
                await self.start(message)
            elif event == "stop":
                return False
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("media stream: ignoring a malformed message (%s): %.120s", exc, raw)
        return True

    async def start(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            return
        start = message["start"]
        params: dict[str, str] = start.get("customParameters") or {}
        call_sid = str(start["callSid"])
        stream_sid = str(message.get("streamSid") or start["streamSid"])
        media_format = start.get("mediaFormat") or {}
        if (
            media_format.get("encoding", "audio/x-mulaw") != "audio/x-mulaw"
            or int(media_format.get("sampleRate", 8000)) != 8000
        ):
            log.warning("call %s: unsupported media format %s", call_sid, media_format)
            await self.twilio.close(1003, "only audio/x-mulaw at 8000 Hz")
            return
        history: list[TranscriptItem] = []
        clock_offset_ms = 0
        try:
            db = resources().db()
            tenant = await tenants.get_tenant(db, params.get("tenant", ""))
            # The upgrade's signature covers the URL only (the same for every call), so the stream must also
            # belong to a call the signed router connected to this tenant.
            record = await calls.get_call(db, call_sid)
            if record is None or record.tenant_id != (tenant.id if tenant else None):
                tenant = None
            resumed = tenant is not None and params.get("resume_call") == call_sid
            if resumed:
                history = await load_transcript(resources().database, call_sid)  # #22: continue a stored call
                clock_offset_ms = _call_clock(record, history)
            first_seq = await call_transcripts.next_seq(db, call_sid)
        except APIError:
            log.warning("call %s: database unavailable at stream start", call_sid)
            await self.twilio.close(1011, "database unavailable")
            return
        if tenant is None:
            log.warning("call %s: stream for an unknown call or tenant %r", call_sid, params.get("tenant"))
            await self.twilio.close(1008, "unknown call")
            return
        refusal = self.realtime.refusal()
        if refusal is not None:
            await self.twilio.close(TRY_AGAIN_LATER, refusal)
            return
        info = CallInfo(
            call_sid=call_sid,
            stream_sid=stream_sid,
            account_sid=start.get("accountSid"),
            tenant_id=tenant.id,
            from_number=params.get("caller") or None,
            to_number=params.get("called") or None,
            stream_url=_public_stream_url(),
        )
        self.session = self.realtime.open_call(
            info, tenant, self.twilio, history, first_seq, resumed=resumed, clock_offset_ms=clock_offset_ms
        )
        self.session.begin()


def _call_clock(record: calls.Call | None, history: list[TranscriptItem]) -> int:
    """Where a resumed call's clock stands (ms): the time since its first stream started, and never before its
    last stored turn (a new stream's timestamps start at 0 again)."""
    elapsed = int((time.time() - record.started_at) * 1000) if record is not None and record.started_at else 0
    return max(elapsed, max((i.call_ms + 1 for i in history), default=0))


def _public_stream_url() -> str | None:
    """The public URL Twilio opened this stream at (as its signature is checked): a moved call goes back there."""
    settings = resources().settings
    if settings.twilio_stream_url:
        return settings.twilio_stream_url
    try:
        return websocket_url(public_url(settings, websocket.scheme, websocket.host, websocket.path, websocket.headers))
    except Exception:  # noqa: BLE001 - the default stream URL from the settings is used instead
        return None


async def _close_on_drain(tracked: TrackedSocket, twilio: TwilioSocket) -> None:
    await tracked.closing.wait()
    await twilio.close(1001, "server is restarting")


@blueprint.websocket("/twilio/media-stream")
@cors_exempt
async def media_stream() -> None:
    if await refuse_unsigned_stream():
        return
    try:
        realtime: RealtimeCalls | None = feature(RealtimeCalls)
    except APIError:
        realtime = None
    await websocket.accept()
    if realtime is None or realtime.refusal() is not None:
        await websocket.close(TRY_AGAIN_LATER, "not taking calls")
        return
    twilio = TwilioSocket()
    relay = Relay(realtime, twilio)
    reason = "stream_closed"
    async with resources().websockets.track(KIND) as tracked:
        watcher = asyncio.create_task(_close_on_drain(tracked, twilio))
        try:
            while True:
                raw = await websocket.receive()
                if not isinstance(raw, str) or len(raw) > MAX_MESSAGE_CHARS:
                    continue
                if not await relay.handle(raw):
                    reason = "caller_hangup"
                    break
        finally:
            watcher.cancel()
            session = relay.session
            if session is not None:
                # Shielded: when the client left, Quart cancels this handler; the call still ends properly.
                ending = asyncio.ensure_future(session.end(reason))
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(ending)
    twilio.open = False
