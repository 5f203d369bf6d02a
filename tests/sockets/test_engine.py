"""quart_app/sockets/engine.py: Engine.IO sockets without a task per message behave like python-engineio's.

Every behaviour test runs twice on a real hypercorn (in the test's loop): once on python-socketio's stock
AsyncServer and once on the shipped server class (`server.Server`: EngineServer + FanoutServer, with
fanout's `install`), with the same handlers and short heartbeats, and asserts the same outcome for both.
Nothing waits a fixed time: events are awaited with generous timeouts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
import websockets

from quart_app.settings import Settings
from quart_app.sockets import engine
from quart_app.sockets.fanout import FanoutManager, install, writer_idle
from quart_app.sockets.server import Server, build_socketio
from tests.support.inprocess import serve_asgi

TIMEOUT = 15.0  # generous: outcomes are asserted, never how fast they came
PING_INTERVAL = 1
PING_TIMEOUT = 1
MAX_SIZE = 1024


@dataclass
class Served:
    kind: str
    sio: socketio.AsyncServer
    url: str
    disconnects: list[tuple[str, Any]] = field(default_factory=list)
    collected: list[Any] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"


def _make(kind: str) -> socketio.AsyncServer:
    options: dict[str, Any] = {
        "async_mode": "asgi",
        "ping_interval": PING_INTERVAL,
        "ping_timeout": PING_TIMEOUT,
        "max_http_buffer_size": MAX_SIZE,
    }
    if kind == "stock":
        return socketio.AsyncServer(**options)
    return install(Server(client_manager=FanoutManager(), **options))


def _handlers(served: Served) -> None:
    sio = served.sio

    @sio.on("disconnect")
    async def on_disconnect(sid: str, reason: Any) -> None:
        served.disconnects.append((sid, reason))

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.on("ping_server")  # run inline by EngineServer (INLINE_EVENTS), in a task by the stock server
    async def ping_server(sid: str, data: Any = None) -> Any:
        if data == "raise":
            raise RuntimeError("handler failure")
        return {"pong": data}

    @sio.on("collect")
    async def collect(sid: str, data: Any) -> None:
        served.collected.append(data)

    @sio.on("burst")
    async def burst(sid: str, n: int) -> None:
        for i in range(n):
            await sio.emit("seq", i, to=sid)

    @sio.on("kick")
    async def kick(sid: str) -> None:
        await sio.disconnect(sid)


@pytest.fixture(params=["stock", "ours"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    kind = request.param
    result = Served(kind, _make(kind), "")
    _handlers(result)
    try:
        async with serve_asgi(socketio.ASGIApp(result.sio)) as port:
            result.url = f"http://127.0.0.1:{port}"
            try:
                yield result
            finally:
                for s in list(result.sio.eio.sockets.values()):
                    await s.close(wait=False)
    finally:
        await result.sio.shutdown()


async def _client(served: Served, transports: list[str]) -> tuple[socketio.AsyncClient, asyncio.Queue[Any]]:
    client = socketio.AsyncClient(reconnection=False)
    received: asyncio.Queue[Any] = asyncio.Queue()

    @client.on("seq")
    async def on_seq(data: Any) -> None:
        received.put_nowait(data)

    @client.on("disconnect")
    async def on_disconnect(*args: Any) -> None:
        received.put_nowait(("disconnected",))

    await client.connect(served.url, transports=transports, wait_timeout=TIMEOUT)
    return client, received


async def _wait(predicate: Any, within: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _eio_socket(served: Served) -> Any:
    sockets = list(served.sio.eio.sockets.values())
    assert len(sockets) == 1
    return sockets[0]


class RawClient:
    """Engine.IO v4 by hand over `websockets`, to see exactly what the server sends and when it closes."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, served: Served) -> RawClient:
        ws = await websockets.connect(served.ws_url, open_timeout=TIMEOUT, max_size=None)
        raw = cls(ws)
        first = await raw.recv()
        assert first.startswith("0{")
        await ws.send("40")
        assert (await raw.recv()).startswith("40{")
        return raw

    async def recv(self) -> Any:
        return await asyncio.wait_for(self.ws.recv(), TIMEOUT)

    async def until_closed(self, answer_pings: bool = False) -> tuple[list[Any], int | None]:
        """Everything received until the server closes the connection, and the close code it sent."""
        got: list[Any] = []
        try:
            while True:
                message = await self.recv()
                got.append(message)
                if answer_pings and message == "2":
                    await self.ws.send("3")
        except websockets.ConnectionClosed as exc:
            return got, exc.rcvd.code if exc.rcvd else None


# ------------------------------------------------------------------------------------------ wiring


def test_the_shipped_server_uses_engine_sockets() -> None:
    sio = build_socketio(Settings.from_env({}))
    assert isinstance(sio, engine.EngineServer)
    assert isinstance(sio.eio, engine.EngineIOServer)
    assert sio.async_handlers is True, "long handlers (/voice audio) must keep running in tasks"
    assert engine.problems() == []


def test_problems_reports_a_changed_upstream_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine.FINGERPRINTS, "engineio.async_socket.AsyncSocket.poll", "0" * 16)
    found = engine.problems()
    assert len(found) == 1 and "AsyncSocket.poll changed upstream" in found[0]


# ------------------------------------------------------------------------------------------ transports

TRANSPORTS = {"websocket-only": ["websocket"], "polling-then-websocket": ["polling", "websocket"]}


@pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
async def test_connect_echo_disconnect(served: Served, transports: list[str]) -> None:
    client, _ = await _client(served, transports)
    assert client.transport() == "websocket"
    socket = _eio_socket(served)
    assert socket.upgraded and not socket.upgrading
    assert isinstance(socket, engine.EngineSocket) == (served.kind == "ours")
    assert await client.call("echo", {"a": [1, "two"]}, timeout=TIMEOUT) == {"a": [1, "two"]}
    assert await client.call("ping_server", 7, timeout=TIMEOUT) == {"pong": 7}
    sid = client.get_sid()
    await client.disconnect()
    await _wait(lambda: served.disconnects)
    # python-socketio's client sends Socket.IO DISCONNECT then closes the websocket: the server reports
    # whichever it handles first (the stock server reports "transport close" here too)
    assert served.disconnects[0][0] == sid and len(served.disconnects) == 1
    assert served.disconnects[0][1] in (served.sio.reason.CLIENT_DISCONNECT, served.sio.reason.TRANSPORT_CLOSE)
    await _wait(lambda: not served.sio.eio.sockets)


async def test_polling_only_echo_and_server_disconnect(served: Served) -> None:
    client, received = await _client(served, ["polling"])
    assert client.transport() == "polling"
    assert await client.call("echo", "over polling", timeout=TIMEOUT) == "over polling"
    assert await client.call("echo", b"\x00\xffbin", timeout=TIMEOUT) == b"\x00\xffbin"
    await client.emit("kick")
    assert await asyncio.wait_for(received.get(), TIMEOUT) == ("disconnected",)
    await _wait(lambda: served.disconnects)
    assert served.disconnects[0][1] == served.sio.reason.SERVER_DISCONNECT
    await client.disconnect()


@pytest.mark.parametrize("transports", list(TRANSPORTS.values()), ids=list(TRANSPORTS))
async def test_binary_attachments_both_ways(served: Served, transports: list[str]) -> None:
    client, _ = await _client(served, transports)
    try:
        payload = {"one": b"\x00\x01\x02", "more": [b"\xff" * 300, "text", {"deep": bytes(range(256))}]}
        assert await client.call("echo", payload, timeout=TIMEOUT) == payload
        assert await client.call("echo", b"", timeout=TIMEOUT) == b""
    finally:
        await client.disconnect()


async def test_server_disconnect_websocket(served: Served) -> None:
    client, received = await _client(served, ["websocket"])
    await client.emit("kick")
    assert await asyncio.wait_for(received.get(), TIMEOUT) == ("disconnected",)
    await _wait(lambda: served.disconnects)
    assert served.disconnects[0][1] == served.sio.reason.SERVER_DISCONNECT
    await _wait(lambda: not served.sio.eio.sockets)
    await client.disconnect()


async def test_many_messages_in_order_both_ways(served: Served) -> None:
    client, received = await _client(served, ["websocket"])
    try:
        n = 500
        for i in range(n):
            await client.emit("collect", i)
        await client.emit("burst", n)
        got = [await asyncio.wait_for(received.get(), TIMEOUT) for _ in range(n)]
        assert got == list(range(n))
        # an ack after the events: every earlier event has been handled by then (one connection's reads are
        # sequential and each handler here finishes without suspending)
        assert await client.call("echo", "done", timeout=TIMEOUT) == "done"
        await _wait(lambda: len(served.collected) == n)
        assert served.collected == list(range(n))
    finally:
        await client.disconnect()


async def test_handler_error_costs_only_that_event(served: Served) -> None:
    client, _ = await _client(served, ["websocket"])
    try:
        with pytest.raises(socketio.exceptions.TimeoutError):
            await client.call("ping_server", "raise", timeout=1)  # no ack: the handler failed
        assert await client.call("ping_server", 2, timeout=TIMEOUT) == {"pong": 2}
        assert client.connected
    finally:
        await client.disconnect()


# ------------------------------------------------------------------------------------------ limits and pings


async def test_oversized_message_closes_the_connection(served: Served) -> None:
    raw = await RawClient.open(served)
    await raw.ws.send('42["echo","' + "x" * (MAX_SIZE + 10) + '"]')
    got, code = await raw.until_closed(answer_pings=True)
    assert not any(isinstance(m, str) and m.startswith("43") for m in got), "no ack for an oversized message"
    assert code == 1000
    await _wait(lambda: served.disconnects)
    assert served.disconnects[0][1] == served.sio.reason.TRANSPORT_CLOSE
    await _wait(lambda: not served.sio.eio.sockets)


async def test_message_at_the_limit_is_accepted(served: Served) -> None:
    raw = await RawClient.open(served)
    try:
        prefix, suffix = '421["echo","', '"]'
        body = "y" * (MAX_SIZE - len(prefix) - len(suffix))
        await raw.ws.send(prefix + body + suffix)
        while (message := await raw.recv()) == "2":
            await raw.ws.send("3")
        assert message == '431["' + body + '"]'
    finally:
        await raw.ws.close()


async def test_silent_client_is_closed_by_ping_timeout(served: Served) -> None:
    raw = await RawClient.open(served)
    got, _ = await raw.until_closed(answer_pings=False)
    assert "2" in got, "the server pinged before giving up"
    await _wait(lambda: served.disconnects)
    assert served.disconnects[0][1] in (served.sio.reason.PING_TIMEOUT, served.sio.reason.TRANSPORT_CLOSE)
    await _wait(lambda: not served.sio.eio.sockets)


async def test_client_answering_pings_stays_connected(served: Served) -> None:
    raw = await RawClient.open(served)
    try:
        pings = 0
        while pings < 4:  # four ping cycles of 1 s + 1 s: past the timeout that closes a silent client
            message = await raw.recv()
            if message == "2":
                pings += 1
                await raw.ws.send("3")
        await raw.ws.send('421["echo","still here"]')
        while (message := await raw.recv()) == "2":
            await raw.ws.send("3")
        assert message == '431["still here"]'
        assert served.disconnects == []
    finally:
        await raw.ws.close()


async def test_failed_upgrade_keeps_the_polling_session(served: Served) -> None:
    """A websocket upgrade that does not start with the probe ping is refused; polling carries on."""
    import httpx

    async with httpx.AsyncClient(base_url=served.url, timeout=TIMEOUT) as http:
        response = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(response.text[1:])["sid"]
        ws = await websockets.connect(served.ws_url + f"&sid={sid}", open_timeout=TIMEOUT)
        await ws.send("4not-a-probe")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        socket = served.sio.eio.sockets[sid]
        assert not socket.upgraded and not socket.upgrading
        await http.post("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content="40")
        response = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid})
        assert response.text.startswith("40{")
        await http.post("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content="1")


# ------------------------------------------------------------------------------------------ what changed


async def test_no_task_per_message_and_the_writer_stays_idle_for_the_fan_out(served: Served) -> None:
    client, received = await _client(served, ["websocket"])
    try:
        for i in range(20):
            assert await client.call("echo", i, timeout=TIMEOUT) == i
        socket = _eio_socket(served)
        await _wait(lambda: writer_idle(socket.queue))
        names = {getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks()}
        per_message = {"AsyncSocket._websocket_handler.<locals>.websocket_wait", "AsyncSocket._send_ping"}
        if served.kind == "ours":
            assert not names & per_message, names & per_message
            manager = served.sio.manager
            assert isinstance(manager, FanoutManager)
            before = manager.writes_raw
            await served.sio.emit("seq", "direct", to=client.get_sid())
            assert await asyncio.wait_for(received.get(), TIMEOUT) == "direct"
            assert manager.writes_raw == before + 1, "an idle writer lets the fan-out write directly"
        else:
            assert "AsyncSocket._websocket_handler.<locals>.websocket_wait" in names
    finally:
        await client.disconnect()
