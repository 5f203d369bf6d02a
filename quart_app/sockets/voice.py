"""Namespace "/voice": the voice to-do assistant for the browser page (GET /webrtc/voice-assistant).

    io(url + "/voice"[, {auth: {token}}])
    -> status {message: "Connected! Ready to authenticate."}
    -> authenticated {user: {id, name}, todos}      at once when the handshake carried a valid token
    <- authenticate {user, pin}                     user = e-mail or phone
    -> authenticated {user: {id, name}, todos, token, expires_in} | auth_error {message, code, retry_after?}
    <- audio {audio: <binary>, mime}                -> transcript {text}, then response {text, audio?, mime?}
    <- text {text}                                  -> response {text, audio?, mime?}
    -> todos {items}                                to every connection of the user, on every instance
    -> error {code, message}                        the connection stays up

A signed-in connection joins the room `voice:user:<id>`; the feature subscribes one listener on the to-do
service and emits `todos` to that room through the server, so the client manager (Redis when configured)
carries it to the user's connections on every instance. Per-connection state (who signed in, from where) is
in the Socket.IO session; one request at a time per connection (a second while one runs gets `busy`). A
provider failure answers with an apology in `response` and an `error`, never a dropped socket. Nothing secret
(PINs, tokens, audio, what was said) is logged.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from ..assistant.errors import AssistantError
from ..assistant.feature import AssistantFeature
from ..assistant.speech import MAX_AUDIO_BYTES, MAX_AUDIO_SECONDS, check_duration
from ..auth.signin import Busy, InvalidCredentials, LockedOut, SignInRateLimited
from ..db.todos import Todo
from ..db.users import User
from ..errors import APIError
from ..resources import Resources
from ..web.guards import forwarded_client
from .handshake import authenticate_handshake

log = logging.getLogger(__name__)

NAMESPACE = "/voice"
READY = "Connected! Ready to authenticate."
MAX_TEXT_CHARS = 2000
MAX_IDENTIFIER_CHARS = 254
MAX_PIN_CHARS = 64
MAX_MIME_CHARS = 100
APOLOGY = "Sorry, something went wrong on my side. Please try again."
NOT_HEARD = "Sorry, I didn't catch that. Please try again."
_RESERVED = ("connect", "disconnect")
GREET_POLLS = 2000  # at most ~10 s for the CONNECT to go out


def room(user_id: str) -> str:
    return f"voice:user:{user_id}"


def public_user(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name or user.email or user.phone or user.id}


def public_todos(todos: list[Todo]) -> list[dict[str, Any]]:
    return [todo.public() for todo in todos]


def client_address(environ: dict[str, Any], trusted_proxies: int) -> str:
    """The peer as REST's `client_address` sees it: the ASGI client, or the X-Forwarded-For entry our own
    trusted proxies appended (engine.io's environ has a fixed REMOTE_ADDR, so the ASGI scope is read)."""
    scope = environ.get("asgi.scope") or {}
    peer = scope.get("client") or (None, None)
    return forwarded_client(environ.get("HTTP_X_FORWARDED_FOR", ""), peer[0], trusted_proxies)


def parse_credentials(data: Any) -> tuple[str, str] | None:
    """(identifier, pin) from an `authenticate` payload, or None when it is malformed."""
    if not isinstance(data, dict):
        return None
    user, pin = data.get("user"), data.get("pin")
    if not isinstance(user, str) or not isinstance(pin, str):
        return None
    user = user.strip()
    if not user or not pin or len(user) > MAX_IDENTIFIER_CHARS or len(pin) > MAX_PIN_CHARS:
        return None
    return user, pin


def parse_text(data: Any) -> str | None:
    """The request of a `text` payload ({text} or a bare string), or None when it is malformed."""
    text = data.get("text") if isinstance(data, dict) else data
    if not isinstance(text, str):
        return None
    return text.strip()


def parse_audio(data: Any) -> tuple[bytes, str] | None:
    """(audio, mime) of an `audio` payload ({audio: <binary>, mime} or bare binary), or None when malformed."""
    audio, mime = (data.get("audio"), data.get("mime", "")) if isinstance(data, dict) else (data, "")
    if isinstance(audio, bytearray | memoryview):
        audio = bytes(audio)
    if not isinstance(audio, bytes) or not isinstance(mime, str | None):
        return None
    return audio, (mime or "")[:MAX_MIME_CHARS]


def auth_error(exc: APIError) -> dict[str, Any]:
    """The `auth_error` payload for a refused sign-in: the same words and codes as REST's 401/429/503."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    retry_after = exc.extra.get("retry_after") if isinstance(exc.extra, dict) else None
    if isinstance(exc, LockedOut | SignInRateLimited | Busy) and retry_after is not None:
        body["retry_after"] = retry_after
    return body


class VoiceNamespace(socketio.AsyncNamespace):
    def __init__(self, resources: Resources, feature: AssistantFeature) -> None:
        super().__init__(NAMESPACE)
        self.resources = resources
        self.feature = feature
        self.busy: set[str] = set()  # sids with a request in progress (checked and set with no await between)

    # ----- connection and sign-in ---------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # A handshake token (API key, Auth0 JWT, vst_ session) signs in at once; a bad one is refused.
        principal = await authenticate_handshake(self.resources.authenticator, auth, required=False)
        address = client_address(environ, self.resources.settings.trusted_proxy_count)
        await self.save_session(sid, {"address": address, "user_id": None})
        user = principal.user if principal is not None else None
        # Events emitted before the CONNECT is sent would reach no handler: greet once it is.
        self.server.start_background_task(self._greet, sid, user)

    async def _greet(self, sid: str, user: User | None) -> None:
        manager = self.server.manager
        for _ in range(GREET_POLLS):  # python-socketio sends the CONNECT, then marks the client connected
            if manager.is_connected(sid, NAMESPACE):
                break
            await self.server.sleep(0.005)
        else:
            return  # gone before its CONNECT went out
        await self.emit("status", {"message": READY}, to=sid, ignore_queue=True)
        if user is not None:
            await self._signed_in(sid, user, {})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.busy.discard(sid)

    async def on_authenticate(self, sid: str, data: Any = None) -> None:
        credentials = parse_credentials(data)
        if credentials is None:
            await self._error(sid, "bad_request", "authenticate needs {user: e-mail or phone, pin}.")
            return
        identifier, pin = credentials
        if not self._claim(sid):
            await self._error(sid, "busy", "A request is already in progress on this connection.")
            return
        try:
            session = await self.get_session(sid)
            try:
                signed = await self.resources.pin_signin.sign_in(identifier, pin, session.get("address", "unknown"))
            except (InvalidCredentials, LockedOut, SignInRateLimited, Busy) as exc:
                log.info("voice sign-in refused: %s", exc.code)
                await self.emit("auth_error", auth_error(exc), to=sid, ignore_queue=True)
                return
            except APIError as exc:  # database or Redis down: say so, keep the socket
                log.warning("voice sign-in failed: %s", exc.code)
                await self.emit("auth_error", {"code": exc.code, "message": exc.message}, to=sid, ignore_queue=True)
                return
            await self._signed_in(sid, signed.user, {"token": signed.token, "expires_in": signed.expires_in})
        finally:
            self.busy.discard(sid)

    async def _signed_in(self, sid: str, user: User, extra: dict[str, Any]) -> None:
        session = await self.get_session(sid)
        previous = session.get("user_id")
        if previous and previous != user.id:
            await self.leave_room(sid, room(previous))
        session["user_id"] = user.id
        await self.save_session(sid, session)
        await self.enter_room(sid, room(user.id))
        try:
            todos = public_todos(await self.feature.todos.list(user.id))
        except APIError as exc:  # the list is unavailable: signed in all the same, the list follows later
            log.warning("voice sign-in without the list: %s", exc.code)
            todos = []
        payload = {"user": public_user(user), "todos": todos, **extra}
        await self.emit("authenticated", payload, to=sid, ignore_queue=True)

    # ----- requests -------------------------------------------------------------------------------------

    async def on_text(self, sid: str, data: Any = None) -> None:
        user_id = await self._user_id(sid)
        if user_id is None:
            return
        text = parse_text(data)
        if text is None or not text:
            await self._error(sid, "bad_request", "text needs {text: a non-empty string}.")
            return
        if len(text) > MAX_TEXT_CHARS:
            await self._error(sid, "text_too_long", f"A request is at most {MAX_TEXT_CHARS} characters.")
            return
        if not self._claim(sid):
            await self._error(sid, "busy", "A request is already in progress on this connection.")
            return
        try:
            await self._answer(sid, user_id, text)
        finally:
            self.busy.discard(sid)

    async def on_audio(self, sid: str, data: Any = None) -> None:
        user_id = await self._user_id(sid)
        if user_id is None:
            return
        parsed = parse_audio(data)
        if parsed is None or not parsed[0]:
            await self._error(sid, "bad_request", "audio needs {audio: <binary>, mime}.")
            return
        audio, mime = parsed
        if len(audio) > MAX_AUDIO_BYTES:
            await self._error(
                sid, "audio_too_large", f"The recording is too large; at most {MAX_AUDIO_BYTES} bytes are accepted."
            )
            return
        if not self._claim(sid):
            await self._error(sid, "busy", "A request is already in progress on this connection.")
            return
        try:
            try:
                await check_duration(audio, limit=MAX_AUDIO_SECONDS)
                text = await self.feature.speech.transcribe(audio, mime)
            except AssistantError as exc:
                await self._failed(sid, exc, apologise=exc.status >= 500)
                return
            except Exception:
                log.exception("voice transcription failed unexpectedly")
                await self._failed(sid, APIError(500, "internal_error", APOLOGY), apologise=True)
                return
            if not text:
                await self.emit("transcript", {"text": ""}, to=sid, ignore_queue=True)
                await self._respond_text(sid, NOT_HEARD)
                return
            await self.emit("transcript", {"text": text}, to=sid, ignore_queue=True)
            await self._answer(sid, user_id, text)
        finally:
            self.busy.discard(sid)

    async def _answer(self, sid: str, user_id: str, text: str) -> None:
        """The assistant's answer to `text` as `response` {text, audio, mime}; the list change reaches the
        user's connections through the to-do listener."""
        try:
            reply = await self.feature.assistant.respond(user_id, text)
        except AssistantError as exc:
            await self._failed(sid, exc, apologise=exc.status >= 500)
            return
        except APIError as exc:
            await self._failed(sid, AssistantError(exc.code, APOLOGY), apologise=True)
            return
        except Exception:
            log.exception("voice assistant turn failed unexpectedly")
            await self._failed(sid, APIError(500, "internal_error", APOLOGY), apologise=True)
            return
        try:
            audio, mime = await self.feature.speech.synthesize(reply.text)
        except AssistantError as exc:  # the words still go out; the error says why there is no sound
            await self._respond_text(sid, reply.text)
            await self._error(sid, exc.code, exc.message)
            return
        except Exception:
            log.exception("voice speech synthesis failed unexpectedly")
            await self._respond_text(sid, reply.text)
            await self._error(sid, "speech_failed", "Sorry, I can't speak my answer right now.")
            return
        await self.emit("response", {"text": reply.text, "audio": audio, "mime": mime}, to=sid, ignore_queue=True)

    async def _respond_text(self, sid: str, text: str) -> None:
        await self.emit("response", {"text": text}, to=sid, ignore_queue=True)

    async def _failed(self, sid: str, exc: APIError, *, apologise: bool) -> None:
        """A refused request gets `error`; a failed one (provider, storage) an apology in `response` too."""
        if apologise:
            log.warning("voice request failed: %s", exc.code)
            await self._respond_text(sid, exc.message if isinstance(exc, AssistantError) else APOLOGY)
        await self._error(sid, exc.code, exc.message)

    # ----- helpers ------------------------------------------------------------------------------------

    async def _user_id(self, sid: str) -> str | None:
        session = await self.get_session(sid)
        user_id = session.get("user_id")
        if not user_id:
            await self._error(sid, "not_authenticated", "Sign in first: send authenticate {user, pin}.")
            return None
        return str(user_id)

    def _claim(self, sid: str) -> bool:
        if sid in self.busy:
            return False
        self.busy.add(sid)
        return True

    async def _error(self, sid: str, code: str, message: str) -> None:
        await self.emit("error", {"code": code, "message": message}, to=sid, ignore_queue=True)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Known events go to their handler; any other gets `error` bad_message."""
        if event in _RESERVED or hasattr(self, f"on_{event}"):
            return await super().trigger_event(event, *args)
        if args:
            await self._error(args[0], "bad_message", f"unknown event {str(event)[:40]!r}")
        return None

    # ----- the list, to every connection of its user --------------------------------------------------

    async def todos_changed(self, user_id: str, todos: list[Todo]) -> None:
        """Through the server (not ignore_queue): the client manager fans it out to every instance."""
        await self.server.emit("todos", {"items": public_todos(todos)}, room=room(user_id), namespace=NAMESPACE)


def register_voice(resources: Resources, feature: AssistantFeature) -> VoiceNamespace:
    """Register "/voice" and subscribe its `todos` emitter on the feature's to-do service."""
    namespace = VoiceNamespace(resources, feature)
    resources.sio.register_namespace(namespace)
    feature.todos.subscribe(namespace.todos_changed)
    return namespace


class VoiceSocket(AssistantFeature):
    """The assistant feature with its Socket.IO front end: `start()` registers "/voice".

    REST (`/api/todos`) and the phone flow reach the same object with `web.state.feature(AssistantFeature)`.
    """

    resources: Resources
    namespace: VoiceNamespace | None = None

    @classmethod
    def from_resources(cls, resources: Resources) -> VoiceSocket:
        feature = cls.build(resources.settings, resources.database, resources.providers)
        if not isinstance(feature, cls):  # build() makes `cls(...)`: a VoiceSocket here
            raise TypeError(f"AssistantFeature.build made a {type(feature).__name__}, not a {cls.__name__}")
        feature.resources = resources
        return feature

    async def start(self) -> None:
        await super().start()
        self.namespace = register_voice(self.resources, self)

    async def stop(self) -> None:
        if self.namespace is not None:
            self.todos.unsubscribe(self.namespace.todos_changed)
        await super().stop()
