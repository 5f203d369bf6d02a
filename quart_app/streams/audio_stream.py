"""`/audio-stream` as a plain WebSocket: live transcription for clients without Socket.IO.

    upgrade with `Authorization: Bearer <jwt>` or `x-api-key` (HTTP 401 before the upgrade otherwise), `?lang=`
    -> {"type": "connected", "message": "Successfully connected", "session_id"}
    <- {"type": "start", ...options}   -> {"type": "started", "session_id"}
    <- binary frames of audio          -> {"type": "transcript", ...}, {"type": "utterance_end", ...}
    <- {"type": "stop"}                -> {"type": "stopped", "transcription_id", "text", "duration_s"}
    -> {"type": "error", "code", "message"}   (the socket stays open)

The same `LiveTranscription` as the Socket.IO namespace does the work; this adapter only frames messages.
When the instance drains, the stream is finalised first (`error` server_restarting, `stopped`), then the
socket is closed with 1001.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from quart import Blueprint, websocket

from ..live.feature import LiveStreams
from ..live.session import LiveTranscription
from ..web.guards import current_principal, require_websocket_auth
from ..web.state import feature, resources
from ..web.websockets import close_going_away, receive_or_drain

blueprint = Blueprint("streams", __name__)

KIND = "audio-stream"  # the plain-socket kind in /health's connection counts
ENDPOINT = "ws /audio-stream"
GREETING = "Successfully connected"
MAX_TEXT_CHARS = 64 * 1024  # control messages are small; a longer text frame is not parsed
LEFTOVER_WAIT_S = 0.01  # after the client left: what it sent before leaving is already queued
LEFTOVER_MESSAGES = 10_000


class _Sender:
    """Sends one event as a JSON text frame, until the handler has finished."""

    def __init__(self) -> None:
        self._send = websocket.send  # bound to this connection's Websocket, usable from the session's tasks
        self.open = True

    async def __call__(self, event: str, payload: dict[str, Any]) -> None:
        if self.open:
            await self._send(json.dumps({"type": event, **payload}))


@blueprint.websocket("/audio-stream")
@require_websocket_auth(rate_limited=False)  # like the Socket.IO handshake; `start` has its own rate limit
async def audio_stream() -> None:
    streams = feature(LiveStreams)  # 503 before the upgrade when the feature is not running
    principal = current_principal()
    await websocket.accept()
    sender = _Sender()
    async with resources().websockets.track(KIND) as tracked:
        session = streams.open_session(
            user_id=principal.user.id,
            sender=sender,
            endpoint=ENDPOINT,
            default_language=websocket.args.get("lang") or None,
        )
        try:
            await sender("connected", {"message": GREETING, "session_id": session.session_id})
            while True:
                message = await receive_or_drain(tracked)
                if message is None:
                    if tracked.closing.is_set():
                        break
                    continue  # Quart hands an empty binary frame over as None: no audio in it
                _handle(session, message)
        except asyncio.CancelledError:
            # The client left: Quart cancels the handler, but frames it sent before leaving may still be queued.
            await _take_leftovers(session)
            raise
        finally:
            sender.open = False
            session.close()
    await close_going_away()


def _handle(session: LiveTranscription, message: str | bytes) -> None:
    if isinstance(message, bytes):
        session.audio(message)
    else:
        _dispatch(session, message)


async def _take_leftovers(session: LiveTranscription) -> None:
    for _ in range(LEFTOVER_MESSAGES):
        try:
            message = await asyncio.wait_for(websocket.receive(), LEFTOVER_WAIT_S)
        except (TimeoutError, Exception):  # nothing left, or the connection state is gone with the client
            return
        if message is not None:
            _handle(session, message)


def _dispatch(session: LiveTranscription, text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        session.reject("bad_message", f"text messages may be at most {MAX_TEXT_CHARS} characters")
        return
    try:
        message = json.loads(text)
    except ValueError:
        session.reject("bad_message", 'text messages must be JSON: {"type": "start", ...} or {"type": "stop"}')
        return
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "start":
        session.start({key: value for key, value in message.items() if key != "type"})
    elif kind == "stop":
        session.stop()
    else:
        session.reject("bad_message", 'expected {"type": "start", ...} or {"type": "stop"}')
