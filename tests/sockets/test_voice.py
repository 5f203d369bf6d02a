"""Socket.IO namespace "/voice": sign-in with a PIN (or a handshake token), typed and spoken requests through the
assistant and the fake OpenAI (chat with tool calls, transcription, speech), `todos` to every connection of the
user, and every refusal or provider failure answered with `error` on a connection that stays up.

The app runs under an in-process hypercorn on both backends (SQLite with in-memory counters and Socket.IO
manager; PostgreSQL with Redis), against python-socketio's AsyncClient. Every wait is a hang guard on an event.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import socketio
from quart import Quart

from fakes import FakeOpenAI, run_fake
from quart_app import create_app
from quart_app.assistant.feature import AssistantFeature
from quart_app.auth.pins import hash_pin
from quart_app.db import users
from quart_app.db.users import User
from quart_app.settings import Settings
from quart_app.sockets.voice import NAMESPACE, READY, VoiceSocket
from tests.sockets.clients import EVENT_TIMEOUT, Recorder
from tests.support.audio import spoken
from tests.support.inprocess import served
from tests.support.users import make_user, unique_email

PIN = "482916"
EVENTS = ("status", "authenticated", "auth_error", "transcript", "response", "todos", "error")
Server = tuple[Quart, str, FakeOpenAI]


@pytest.fixture
async def server(backend_env: dict[str, str]) -> AsyncIterator[Server]:
    """The app on one backend, OpenAI (chat, transcription, speech) pointed at the fake."""
    async with run_fake(FakeOpenAI()) as openai:
        settings = Settings.from_env(
            {
                "APP_ENV": "test",
                **backend_env,
                "OPENAI_API_KEY": openai.api_key,
                "OPENAI_BASE_URL": openai.base_url + "/v1",
                "OPENAI_TIMEOUT": "20",
                "PIN_MAX_ATTEMPTS": "3",
                # Above the /voice audio limit (10 MB), so an oversized recording reaches the namespace's own check.
                "SOCKETIO_MAX_HTTP_BUFFER_SIZE": str(16 * 1024 * 1024),
            }
        )
        app = create_app(settings)
        async with served(app) as port:
            yield app, f"http://127.0.0.1:{port}", openai


class VoiceClient:
    """One `/voice` connection and everything it received."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.recorder = Recorder()
        self._consumed: dict[str, int] = {}
        for event in EVENTS:
            self.sio.on(event, self._recorder_for(event), namespace=NAMESPACE)
        self.sio.on("disconnect", lambda *_: self.recorder.record("disconnect"), namespace=NAMESPACE)

    def _recorder_for(self, event: str) -> Callable[..., None]:
        return lambda data=None: self.recorder.record(event, data)

    async def connect(self, base: str, *, token: str | None = None, transports: list[str] | None = None) -> None:
        await self.sio.connect(
            base,
            namespaces=[NAMESPACE],
            auth={"token": token} if token else None,
            transports=transports or ["websocket"],
            wait_timeout=EVENT_TIMEOUT,
        )

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=NAMESPACE)

    async def next(self, event: str) -> Any:
        """The next `event` not yet returned by `next` (past or future): each call consumes one."""
        cursor = self._consumed.get(event, 0)
        if len(self.of(event)) <= cursor:
            await self.recorder.wait_for(event, lambda _: len(self.of(event)) > cursor)
        self._consumed[event] = cursor + 1
        return self.of(event)[cursor]

    def of(self, event: str) -> list[Any]:
        return [payload for name, payload in self.recorder.events if name == event]

    async def close(self) -> None:
        if self.sio.connected:
            await asyncio.wait_for(self.sio.disconnect(), 5)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[], VoiceClient]]:
    made: list[VoiceClient] = []

    def make() -> VoiceClient:
        client = VoiceClient()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def pin_user(app: Quart, *, name: str | None = None) -> tuple[User, str]:
    user, key = await make_user(app, pin=PIN)
    if name:
        db = app.extensions["resources"].db()
        await db.execute(users.users.update().where(users.users.c.id == user.id).values(name=name))
    return user, key


def assistant(app: Quart) -> AssistantFeature:
    for feature in app.extensions["features"]:
        if isinstance(feature, AssistantFeature):
            return feature
    raise AssertionError("the assistant feature is not running")


async def signed_in(client: VoiceClient, base: str, user: User) -> dict[str, Any]:
    await client.connect(base)
    await client.next("status")
    assert user.email is not None
    await client.emit("authenticate", {"user": user.email, "pin": PIN})
    return await client.next("authenticated")


def titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["title"] for item in items]


async def test_connect_says_ready_and_a_pin_signs_in_with_the_list(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, _ = server
    user, _ = await pin_user(app, name="Ada")
    await assistant(app).todos.add(user.id, "water the plants")
    client = clients()
    await client.connect(base)
    assert await client.next("status") == {"message": READY}

    # Before sign-in: requests are refused, the connection stays.
    await client.emit("audio", {"audio": spoken("add buy milk"), "mime": "audio/wav"})
    assert (await client.next("error"))["code"] == "not_authenticated"
    await client.emit("text", {"text": "add buy milk"})
    assert (await client.next("error"))["code"] == "not_authenticated"

    # Malformed sign-ins.
    for bad in (None, "ada", {"user": user.email}, {"user": 5, "pin": PIN}, {"user": "", "pin": PIN}):
        await client.emit("authenticate", bad)
        assert (await client.next("error"))["code"] == "bad_request", bad

    # A wrong PIN, an unknown user: the same answer.
    await client.emit("authenticate", {"user": user.email, "pin": "000000"})
    wrong = await client.next("auth_error")
    await client.emit("authenticate", {"user": unique_email("nobody"), "pin": PIN})  # Redis counters outlive runs
    unknown = await client.next("auth_error")
    assert wrong == unknown == {"code": "invalid_credentials", "message": "E-mail or PIN is incorrect."}

    await client.emit("authenticate", {"user": f"  {user.email.upper()}  ", "pin": PIN})  # type: ignore[union-attr]
    authenticated = await client.next("authenticated")
    assert authenticated["user"] == {"id": user.id, "name": "Ada"}
    assert titles(authenticated["todos"]) == ["water the plants"]
    assert authenticated["token"].startswith("vst_") and authenticated["expires_in"] > 0
    assert client.sio.connected and not client.of("disconnect")

    # By phone number, however it is spelt; a user without a name or e-mail is named by the number.
    db = app.extensions["resources"].db()
    digits = f"{secrets.randbelow(10**7):07d}"  # Redis counters outlive runs: a number of this run's own
    caller = await users.create_user(db, pin_hash=hash_pin(PIN), phone=f"+1555{digits}")
    by_phone = clients()
    await by_phone.connect(base)
    await by_phone.next("status")
    await by_phone.emit("authenticate", {"user": f"+1 (555) {digits[:3]}-{digits[3:]}", "pin": PIN})
    assert (await by_phone.next("authenticated"))["user"] == {"id": caller.id, "name": f"+1555{digits}"}


async def test_repeated_wrong_pins_lock_out_with_retry_after(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, _ = server
    user, _ = await pin_user(app)
    client = clients()
    await client.connect(base)
    await client.next("status")
    answers = []
    for _ in range(4):  # PIN_MAX_ATTEMPTS=3: the third attempt trips the lock, the fourth finds it locked
        await client.emit("authenticate", {"user": user.email, "pin": "111111"})
        answers.append(await client.next("auth_error"))
    assert [a["code"] for a in answers] == ["invalid_credentials", "invalid_credentials", "locked_out", "locked_out"]
    assert all(isinstance(a["retry_after"], int) and a["retry_after"] > 0 for a in answers[2:])
    # Even the right PIN is refused while locked, and the connection stays.
    await client.emit("authenticate", {"user": user.email, "pin": PIN})
    assert (await client.next("auth_error"))["code"] == "locked_out"
    assert client.sio.connected and not client.of("authenticated")


async def test_a_handshake_token_signs_in_at_once_and_a_bad_one_is_refused(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, _ = server
    user, key = await pin_user(app)
    client = clients()
    await client.connect(base, token=key)
    assert await client.next("status") == {"message": READY}
    authenticated = await client.next("authenticated")
    assert authenticated["user"]["id"] == user.id and authenticated["todos"] == []
    assert "token" not in authenticated  # nothing new to hand out

    refused = clients()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(base, token="usr_nobody_forged")


async def test_a_typed_request_answers_and_the_list_reaches_every_connection_of_the_user(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, openai = server
    user, key = await pin_user(app)
    other_user, other_key = await pin_user(app)
    first, second, stranger = clients(), clients(), clients()
    await signed_in(first, base, user)
    await second.connect(base, token=key)  # the same user, signed in by its API key
    await second.next("authenticated")
    await stranger.connect(base, token=other_key)
    await stranger.next("authenticated")

    await first.emit("text", {"text": "add buy milk"})
    response = await first.next("response")
    assert "buy milk" in response["text"].lower()
    assert isinstance(response["audio"], bytes) and len(response["audio"]) > 100
    assert response["mime"] == "audio/mpeg"
    for client in (first, second):
        todos = await client.next("todos")
        assert titles(todos["items"]) == ["buy milk"]
        assert todos["items"][0]["done"] is False
    assert openai.requests_to("/v1/chat/completions") and openai.requests_to("/v1/audio/speech")

    # The stranger's own change reaches only the stranger: its list never held the first user's item.
    await stranger.emit("text", {"text": "add call mom"})
    assert titles((await stranger.next("todos"))["items"]) == ["call mom"]
    assert all(titles(t["items"]) == ["call mom"] for t in stranger.of("todos"))
    assert all("call mom" not in titles(t["items"]) for t in first.of("todos") + second.of("todos"))

    # A change made elsewhere (REST, the phone) reaches the page too.
    await assistant(app).todos.add(user.id, "pay rent")
    assert titles((await second.next("todos"))["items"]) == ["buy milk", "pay rent"]


async def test_a_spoken_request_gives_its_transcript_then_a_spoken_answer(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, openai = server
    user, _ = await pin_user(app)
    audio = spoken("add buy milk")
    openai.register_transcript(audio, "Add buy milk.")
    client = clients()
    await signed_in(client, base, user)

    await client.emit("audio", {"audio": audio, "mime": "audio/wav"})
    assert await client.next("transcript") == {"text": "Add buy milk."}
    response = await client.next("response")
    assert "buy milk" in response["text"].lower()
    assert response["mime"] == "audio/mpeg" and len(response["audio"]) > 100
    assert titles((await client.next("todos"))["items"]) == ["buy milk"]
    upload = openai.requests_to("/v1/audio/transcriptions")[-1]
    assert upload.files["file"]["size"] == len(audio)
    assert client.recorder.names().index("transcript") < client.recorder.names().index("response")


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


async def test_oversized_long_or_malformed_audio_is_refused_and_the_connection_stays(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, openai = server
    user, _ = await pin_user(app)
    client = clients()
    await signed_in(client, base, user)

    await client.emit("audio", {"audio": b"\0" * (10 * 1024 * 1024 + 1), "mime": "audio/webm"})
    assert (await client.next("error"))["code"] == "audio_too_large"
    await client.emit("audio", {"audio": _wav(121), "mime": "audio/wav"})
    too_long = await client.next("error")
    assert too_long["code"] == "audio_too_long" and "120" in too_long["message"]
    await client.emit("audio", {"audio": b"not audio at all" * 10, "mime": "audio/webm"})
    assert (await client.next("error"))["code"] == "unsupported_audio"
    for bad in (None, "text", {"audio": "a string"}, {"audio": b""}, {"audio": b"RIFF", "mime": 7}):
        await client.emit("audio", bad)
        assert (await client.next("error"))["code"] == "bad_request", bad
    for bad in (None, {}, {"text": 5}, {"text": "   "}):
        await client.emit("text", bad)
        assert (await client.next("error"))["code"] == "bad_request", bad
    await client.emit("text", {"text": "x" * 2001})
    assert (await client.next("error"))["code"] == "text_too_long"
    await client.emit("dance", {"now": True})
    assert (await client.next("error"))["code"] == "bad_message"
    assert not openai.requests_to("/v1/audio/transcriptions")  # nothing refused reached the provider

    # Still connected and still working.
    await client.emit("text", {"text": "add buy milk"})
    assert "buy milk" in (await client.next("response"))["text"].lower()
    assert not client.of("disconnect") and client.of("response")[0].get("audio")


async def test_provider_failures_apologise_with_an_error_and_keep_the_socket(
    server: Server, clients: Callable[[], VoiceClient]
) -> None:
    app, base, openai = server
    user, _ = await pin_user(app)
    client = clients()
    await signed_in(client, base, user)

    # The chat model fails (the SDK retries once): an apology, then the error.
    openai.fail_next(500, count=2, path="/v1/chat/completions")
    await client.emit("text", {"text": "add buy milk"})
    apology = await client.next("response")
    failed = await client.next("error")
    assert failed["code"] == "assistant_unavailable" and apology["text"] == failed["message"]
    assert "sorry" in apology["text"].lower() and "audio" not in apology

    # Speech-to-text fails: an apology, the error, no transcript.
    openai.fail_next(500, count=2, path="/v1/audio/transcriptions")
    await client.emit("audio", {"audio": spoken("add buy milk"), "mime": "audio/wav"})
    apology = await client.next("response")
    assert (await client.next("error"))["code"] == "speech_failed" and "sorry" in apology["text"].lower()
    assert not client.of("transcript")

    # Text-to-speech fails: the answer still comes, in words only, and the error says why there is no sound.
    openai.fail_next(500, count=2, path="/v1/audio/speech")
    await client.emit("text", {"text": "add pay rent"})
    answer = await client.next("response")
    assert "pay rent" in answer["text"].lower() and "audio" not in answer
    assert (await client.next("error"))["code"] == "speech_failed"
    assert titles((await client.next("todos"))["items"]) == ["pay rent"]

    # And the next request works normally on the same connection.
    await client.emit("text", {"text": "add buy milk"})
    assert (await client.next("response")).get("audio")
    assert client.sio.connected and not client.of("disconnect")


async def test_one_request_at_a_time_per_connection(
    server: Server, clients: Callable[[], VoiceClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base, _ = server
    user, key = await pin_user(app)
    feature = assistant(app)
    assert isinstance(feature, VoiceSocket)
    entered, release = asyncio.Event(), asyncio.Event()
    original: Callable[[str, str], Awaitable[Any]] = feature.assistant.respond

    async def held(user_id: str, text: str) -> Any:
        entered.set()
        await release.wait()
        return await original(user_id, text)

    monkeypatch.setattr(feature.assistant, "respond", held)
    client, other = clients(), clients()
    await signed_in(client, base, user)
    await other.connect(base, token=key)
    await other.next("authenticated")

    await client.emit("text", {"text": "add buy milk"})
    await asyncio.wait_for(entered.wait(), EVENT_TIMEOUT)
    await client.emit("text", {"text": "add pay rent"})
    assert (await client.next("error"))["code"] == "busy"
    await client.emit("audio", {"audio": spoken("add buy milk"), "mime": "audio/wav"})
    assert (await client.next("error"))["code"] == "busy"
    release.set()
    assert "buy milk" in (await client.next("response"))["text"].lower()
    # The busy one was refused, not queued: only the first request changed the list.
    assert titles((await other.next("todos"))["items"]) == ["buy milk"]
    assert titles([t.public() for t in await feature.todos.list(user.id)]) == ["buy milk"]
    await client.emit("text", {"text": "what's on my list"})
    assert "buy milk" in (await client.next("response"))["text"].lower()


def test_payload_parsers() -> None:
    from quart_app.sockets.voice import client_address, parse_audio, parse_credentials, parse_text

    assert parse_credentials({"user": " a@b.c ", "pin": "1234"}) == ("a@b.c", "1234")
    assert parse_credentials({"user": "a@b.c", "pin": ""}) is None
    assert parse_credentials({"user": "x" * 255, "pin": "1234"}) is None
    assert parse_text({"text": " hi "}) == "hi" and parse_text("hi") == "hi" and parse_text({"text": 1}) is None
    assert parse_audio({"audio": bytearray(b"ab"), "mime": "audio/webm"}) == (b"ab", "audio/webm")
    assert parse_audio(b"ab") == (b"ab", "")
    assert parse_audio({"audio": b"ab", "mime": None}) == (b"ab", "")
    assert parse_audio({"audio": "ab"}) is None
    scope = {"client": ("203.0.113.7", 5000)}
    assert client_address({"asgi.scope": scope}, 0) == "203.0.113.7"
    forwarded = {"asgi.scope": scope, "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.2"}
    assert client_address(forwarded, 0) == "203.0.113.7"  # no trusted proxy: the header is ignored
    assert client_address(forwarded, 1) == "198.51.100.2"


@pytest.mark.parametrize("backend_env", ["sqlite+memory"], indirect=True)
async def test_the_namespace_is_listed(server: Server) -> None:
    _, base, _ = server
    async with httpx.AsyncClient(base_url=base) as http:
        assert NAMESPACE in (await http.get("/")).json()["socketio"]["namespaces"]
