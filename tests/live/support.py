"""Live transcription test clients: the same calls over Socket.IO ("/audio-stream") and the plain WebSocket.

    async with open_client("websocket", port, key) as client:     # or "socketio"
        await client.start(sample_rate=16000)
        await client.send_audio(pcm)                                # 20 ms chunks, as fast as the socket takes them
        stopped = await client.stop_and_wait()

Every event the server sends is recorded as (name, payload) in arrival order; `wait_for` awaits one (a hang
guard only, never a speed assertion).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import socketio
import websockets
from quart import Quart

from fakes import FakeDeepgram
from quart_app import create_app
from quart_app.db import transcriptions
from quart_app.settings import Settings
from tests.sockets.clients import Recorder
from tests.support.inprocess import served
from tests.support.live_audio import WORD_GAP, chunks, spoken_raw, spoken_wav_path

HANG_GUARD = 20.0
CHUNK = 640  # 20 ms of 16 kHz linear16
TEXT = "hello world, how are you"
FRONT_ENDS = ("socketio", "websocket")
EVENTS = ("connected", "started", "transcript", "utterance_end", "stopped", "error")


def register_speech(fake: FakeDeepgram, text: str = TEXT, *, rate: int = 16_000, encoding: str = "linear16") -> bytes:
    """Make the fake hear `text` in espeak-ng's speech of it (one span per word); returns the raw audio to stream."""
    fake.register_live_words(spoken_wav_path(text, WORD_GAP).read_bytes(), text)
    return spoken_raw(text, rate=rate, encoding=encoding, word_gap=WORD_GAP)


class StreamClient:
    """What both front ends share; subclasses only frame messages."""

    kind = ""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.closed = asyncio.Event()

    @property
    def events(self) -> list[tuple[str, Any]]:
        return self.recorder.events

    def of(self, name: str) -> list[Any]:
        return [payload for seen, payload in self.events if seen == name]

    async def wait_for(
        self, name: str, predicate: Callable[[Any], bool] = lambda _: True, within: float = HANG_GUARD
    ) -> Any:
        return await self.recorder.wait_for(name, predicate, within)

    async def next_event(self, name: str, within: float = HANG_GUARD) -> Any:
        """The first `name` event after those already recorded."""
        seen = len(self.of(name))
        return await self.wait_for(name, _nth(self, name, seen), within)

    async def start(self, **options: Any) -> None:
        raise NotImplementedError

    async def send_audio_chunk(self, data: bytes) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def send_event(self, name: str, payload: Any = None) -> None:
        """Any event or message by name (unknown ones included)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def send_audio(self, audio: bytes, size: int = CHUNK) -> None:
        for piece in chunks(audio, size):
            await self.send_audio_chunk(piece)

    async def start_and_wait(self, **options: Any) -> tuple[str, Any]:
        """Send `start`; returns ("started", payload) or ("error", payload), whichever answers it.

        A `not_started` error (audio sent after an earlier stream ended) is not an answer to `start`.
        """
        count = len(self._answers())
        await self.start(**options)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANG_GUARD
        while True:
            answers = self._answers()
            if len(answers) > count:
                return answers[count]
            if loop.time() > deadline:
                raise AssertionError(f"no answer to start within {HANG_GUARD}s; got {self.recorder.names()}")
            await asyncio.sleep(0.01)

    def _answers(self) -> list[tuple[str, Any]]:
        return [(n, p) for n, p in self.events if n == "started" or (n == "error" and p.get("code") != "not_started")]

    async def stop_and_wait(self) -> dict[str, Any]:
        seen = len(self.of("stopped"))
        await self.stop()
        stopped: dict[str, Any] = await self.wait_for("stopped", _nth(self, "stopped", seen))
        return stopped

    def final_text(self) -> str:
        return " ".join(p["text"] for p in self.of("transcript") if p["is_final"])

    def final_words(self) -> list[dict[str, Any]]:
        return [w for p in self.of("transcript") if p["is_final"] for w in p.get("words", [])]

    def error_codes(self) -> list[str]:
        return [p["code"] for p in self.of("error")]


def _nth(client: StreamClient, name: str, index: int) -> Callable[[Any], bool]:
    """Predicate matching the `index`-th `name` payload (by identity), for waiting on the next one."""

    def predicate(payload: Any) -> bool:
        matching = client.of(name)
        return len(matching) > index and matching[index] is payload

    return predicate


class WebSocketClient(StreamClient):
    kind = "websocket"

    def __init__(self, ws: websockets.ClientConnection) -> None:
        super().__init__()
        self.ws = ws
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                body = json.loads(message)
                self.recorder.record(body.pop("type"), body)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.recorder.record("disconnect", self.close_code)
            self.closed.set()

    async def start(self, **options: Any) -> None:
        await self.ws.send(json.dumps({"type": "start", **options}))

    async def send_audio_chunk(self, data: bytes) -> None:
        await self.ws.send(data)

    async def stop(self) -> None:
        await self.ws.send(json.dumps({"type": "stop"}))

    async def send_event(self, name: str, payload: Any = None) -> None:
        body = {"type": name, **(payload or {})} if isinstance(payload, dict | type(None)) else payload
        await self.ws.send(json.dumps(body))

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._reader, HANG_GUARD)


class SocketIOClient(StreamClient):
    kind = "socketio"

    def __init__(self) -> None:
        super().__init__()
        self.sio = socketio.AsyncClient(reconnection=False)
        for name in EVENTS:
            self.sio.on(name, self._recorder_for(name), namespace="/audio-stream")
        self.sio.on("disconnect", self._on_disconnect, namespace="/audio-stream")

    def _recorder_for(self, name: str) -> Callable[..., None]:
        def record(data: Any = None) -> None:
            self.recorder.record(name, data)

        return record

    def _on_disconnect(self, reason: Any = None) -> None:
        self.recorder.record("disconnect", reason)
        self.closed.set()

    async def start(self, **options: Any) -> None:
        await self.sio.emit("start", options, namespace="/audio-stream")

    async def send_audio_chunk(self, data: bytes) -> None:
        await self.sio.emit("audio", data, namespace="/audio-stream")

    async def stop(self) -> None:
        await self.sio.emit("stop", namespace="/audio-stream")

    async def send_event(self, name: str, payload: Any = None) -> None:
        await self.sio.emit(name, payload, namespace="/audio-stream")

    async def close(self) -> None:
        if self.sio.connected:
            await asyncio.wait_for(self.sio.disconnect(), HANG_GUARD)


async def connect_websocket(port: int, key: str, query: str = "") -> WebSocketClient:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/audio-stream{query}",
        additional_headers={"x-api-key": key},
        open_timeout=HANG_GUARD,
        max_size=None,
    )
    return WebSocketClient(ws)


async def connect_socketio(port: int, key: str, query: str = "") -> SocketIOClient:
    client = SocketIOClient()
    await client.sio.connect(
        f"http://127.0.0.1:{port}{query}",
        namespaces=["/audio-stream"],
        auth={"token": key},
        transports=["websocket"],
        wait_timeout=HANG_GUARD,
    )
    return client


@asynccontextmanager
async def open_client(kind: str, port: int, key: str, query: str = "") -> AsyncIterator[StreamClient]:
    """A connected client of `kind`, already greeted with `connected`; closed on the way out."""
    client: StreamClient
    if kind == "websocket":
        client = await connect_websocket(port, key, query)
    else:
        client = await connect_socketio(port, key, query)
    try:
        await client.wait_for("connected")
        yield client
    finally:
        try:
            await client.close()
        except Exception:  # the server may have closed first; the test's assertions decide
            pass


async def stored(app: Quart, user_id: str, transcription_id: str) -> transcriptions.Transcription:
    record = await transcriptions.get_owned(app.extensions["resources"].db(), user_id, transcription_id)
    assert record is not None, f"{transcription_id} is not stored"
    return record


async def usage_rows(app: Quart, user_id: str) -> list[dict[str, Any]]:
    db = app.extensions["resources"].db()
    rows = await db.fetch_all("SELECT * FROM usage_logs WHERE user_id = :u ORDER BY created_at", {"u": user_id})
    return [dict(row._mapping) for row in rows]


async def wait_until(probe: Callable[[], Any], within: float = HANG_GUARD) -> Any:
    """Poll an async or sync `probe()` until it returns something truthy (hang guard only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {value!r})")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def serve_live(
    tmp_path: Path, fake: FakeDeepgram | None, backend: dict[str, str] | None = None, **env: str
) -> AsyncIterator[tuple[Quart, int]]:
    """The real app under an in-process hypercorn, Deepgram pointed at `fake` (None: unconfigured)."""
    values = {"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/live.db", **(backend or {}), **env}
    if fake is not None:
        values.update(DEEPGRAM_API_KEY=fake.api_key, DEEPGRAM_BASE_URL=fake.base_url)
    app = create_app(Settings.from_env(values))
    async with served(app) as port:
        yield app, port
