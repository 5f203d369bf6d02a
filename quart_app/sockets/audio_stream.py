"""Namespace "/audio-stream": live transcription over Socket.IO, a thin adapter on `live.LiveTranscription`.

    io(url + "/audio-stream", {auth: {token}, query: {lang: "en"}})
    -> connected {message, session_id}
    <- start {language, encoding, sample_rate, channels, interim_results, punctuate, diarize}  -> started
    <- audio <binary>   ...   -> transcript {...}, utterance_end {...}
    <- stop                   -> stopped {transcription_id, text, duration_s}
    -> error {code, message}  (the connection stays usable)

Clients of the former Flask-SocketIO service keep working unchanged. Per-connection state is a dict keyed
by sid, read synchronously in each handler, so chunks reach the session in the order they arrived even
though python-socketio runs every event handler as its own task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

import socketio
from socketio.exceptions import ConnectionRefusedError

from ..live.feature import LiveStreams
from ..live.session import LiveTranscription, ProviderRecorder
from ..resources import Resources
from .handshake import INVALID, authenticate_handshake

log = logging.getLogger(__name__)

NAMESPACE = "/audio-stream"
ENDPOINT = "socket.io /audio-stream"
GREETING = "Successfully connected"
_RESERVED = ("connect", "disconnect")


class AudioStreamNamespace(socketio.AsyncNamespace):
    """Auth is required: a missing or bad `auth.token` is refused with "Invalid or expired authentication token"."""

    def __init__(self, resources: Resources, streams: LiveStreams) -> None:
        super().__init__(NAMESPACE)
        self.resources = resources
        self.streams = streams
        self.sessions: dict[str, LiveTranscription] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_handshake(self.resources.authenticator, auth, required=False)
        if principal is None:
            raise ConnectionRefusedError(INVALID)  # existing clients match on this exact text
        language = parse_qs(environ.get("QUERY_STRING", "")).get("lang", [""])[0] or None

        async def send(event: str, payload: dict[str, Any]) -> None:
            # This process holds the client: no need to go through the message queue.
            await self.emit(event, payload, to=sid, ignore_queue=True)

        session = self.streams.open_session(
            user_id=principal.user.id, sender=send, endpoint=ENDPOINT, default_language=language
        )
        self.sessions[sid] = session
        asyncio.get_running_loop().create_task(self._greet(sid, session), name=f"audio-stream-greet-{sid}")

    async def _greet(self, sid: str, session: LiveTranscription) -> None:
        """`connected`, once python-socketio has sent the CONNECT (events before it would reach no handler)."""
        manager = self.server.manager
        for _ in range(100):
            if manager.is_connected(sid, NAMESPACE) or self.sessions.get(sid) is not session:
                break
            await asyncio.sleep(0)
        if self.sessions.get(sid) is session:
            await self.emit(
                "connected", {"message": GREETING, "session_id": session.session_id}, to=sid, ignore_queue=True
            )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            session.close()

    async def on_start(self, sid: str, *args: Any) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            session.start(args[0] if args else None)

    async def on_audio(self, sid: str, *args: Any) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            session.audio(args[0] if args else None)

    async def on_stop(self, sid: str, *args: Any) -> None:
        session = self.sessions.get(sid)
        if session is not None:
            session.stop()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Known events go to their handler; any other event gets `error` bad_message, like on the WebSocket."""
        if event in _RESERVED or hasattr(self, f"on_{event}"):
            return await super().trigger_event(event, *args)
        session = self.sessions.get(args[0]) if args else None
        if session is not None:
            session.reject("bad_message", f"unknown event {str(event)[:40]!r}: expected start, audio or stop")
        return None


class AudioStreamSocket(LiveStreams):
    """The live-streams feature with its Socket.IO front end: `start()` registers "/audio-stream".

    The plain WebSocket route reaches the same feature with `web.state.feature(LiveStreams)`.
    """

    def __init__(self, resources: Resources, *, record_provider: ProviderRecorder | None = None) -> None:
        super().__init__(
            resources.settings,
            resources.database,
            resources.billing,
            resources.counters,
            record_provider=record_provider,
        )
        self.resources = resources

    async def start(self) -> None:
        await super().start()
        self.resources.sio.register_namespace(AudioStreamNamespace(self.resources, self))
