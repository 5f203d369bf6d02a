"""quart_app/sockets/fanout.py: the broadcast fast path delivers exactly what python-socketio's stock emit does.

A real hypercorn serves a bare AsyncServer built like ours (FanoutManager + TrackedWebSocket) in the test's
own event loop, so the test can emit on the server directly and read the manager's counters; the clients are
python-socketio AsyncClients on both transports. Every assertion is about what arrives (each client exactly
one correct packet, in order, rooms, skip_sid, namespaces, binary attachments, acks, the Redis manager),
never about speed: bench/capacity.py measures that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
import websockets
from hypercorn.asyncio import serve
from hypercorn.config import Config

from bench.harness import free_port
from quart_app.sockets.fanout import FanoutManager, FanoutRedisManager, FanoutServer, install, run_eagerly

TIMEOUT = 10.0


@dataclass
class Client:
    sio: socketio.AsyncClient
    got: dict[str, list[Any]] = field(default_factory=dict)

    async def wait_count(self, key: str, n: int) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while len(self.got.get(key, [])) < n:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{key}: {len(self.got.get(key, []))} of {n} within {TIMEOUT}s: {self.got}")
            await asyncio.sleep(0.01)
        return self.got[key]

    async def wait_last(self, key: str, value: Any) -> None:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        for _ in range(int(TIMEOUT * 100) + 1):
            if self.got.get(key) and self.got[key][-1] == value:
                return
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        raise AssertionError(f"{key}: no {value!r} last within {TIMEOUT}s: {self.got}")


@dataclass
class Server:
    sio: socketio.AsyncServer
    url: str
    clients: list[Client] = field(default_factory=list)

    async def client(self, transports: list[str], namespaces: list[str] | None = None) -> Client:
        client = Client(socketio.AsyncClient(reconnection=False))
        for ns in namespaces or ["/"]:

            def record(*args: Any, _ns: str = ns) -> None:
                client.got.setdefault(f"{_ns} news", []).append(args[0] if len(args) == 1 else list(args))

            client.sio.on("news", record, namespace=ns)
        await client.sio.connect(self.url, transports=transports, namespaces=namespaces or ["/"], wait_timeout=10)
        self.clients.append(client)
        return client

    def sid(self, client: Client, namespace: str = "/") -> str:
        sid = client.sio.get_sid(namespace)
        assert sid is not None
        return sid


@contextlib.asynccontextmanager
async def serving(manager: socketio.AsyncManager) -> AsyncIterator[Server]:
    sio = install(FanoutServer(async_mode="asgi", client_manager=manager, ping_interval=5, ping_timeout=5))

    @sio.on("connect", namespace="/other")
    async def other(sid: str, environ: dict[str, Any]) -> None:
        return None

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "ok"

    @sio.on("binary")
    async def binary(sid: str, data: bytes) -> dict[str, bytes]:
        return {"echo": data}

    app = socketio.ASGIApp(sio)
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    server = Server(sio, f"http://127.0.0.1:{port}")
    try:
        for _ in range(200):  # until hypercorn listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        yield server
    finally:
        for c in server.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.sio.disconnect(), 5)
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


WS, POLLING = ["websocket"], ["polling"]


async def _news(server: Server, clients: list[Client], n: int, namespace: str = "/") -> list[list[Any]]:
    return [await c.wait_count(f"{namespace} news", n) for c in clients]


async def test_broadcast_reaches_each_client_exactly_once_on_both_transports() -> None:
    manager = FanoutManager()
    async with serving(manager) as server:
        ws = [await server.client(WS) for _ in range(12)]
        polling = [await server.client(POLLING) for _ in range(2)]
        # in rounds of 10: python-engineio's client refuses a long-poll answer of more than 16 packets
        # (Payload.max_decode_packets), and a burst to a polling client is answered in one
        for first in range(0, 30, 10):
            for seq in range(first, first + 10):
                await server.sio.emit("news", {"seq": seq, "text": "héllo"})
            await _news(server, ws + polling, first + 10)
        for got in await _news(server, ws + polling, 30):
            assert got == [{"seq": seq, "text": "héllo"} for seq in range(30)]  # once each, in order
        await asyncio.sleep(0.2)
        assert all(len(c.got["/ news"]) == 30 for c in ws + polling)  # and nothing more arrives
        assert manager.writes_raw > 0  # the websocket clients took the fast path: one frame, written as is
        assert manager.writes_queued > 0  # the polling clients the Engine.IO queue


async def test_binary_attachments_arrive_whole_on_both_transports() -> None:
    async with serving(FanoutManager()) as server:
        clients = [await server.client(WS), await server.client(WS), await server.client(POLLING)]
        blob = bytes(range(256)) * 3
        await server.sio.emit("news", {"name": "clip", "audio": blob, "parts": [b"a", b"\x00b"]})
        await server.sio.emit("news", ("two", b"args"))
        for c in clients:
            await c.wait_count("/ news", 2)
            assert c.got["/ news"][0] == {"name": "clip", "audio": blob, "parts": [b"a", b"\x00b"]}
        assert all(c.got["/ news"][1] == ["two", b"args"] for c in clients)  # a tuple: several arguments


async def test_rooms_and_skip_sid() -> None:
    async with serving(FanoutManager()) as server:
        a1, a2, b1, both, none = [await server.client(WS) for _ in range(5)]
        for c, rooms in ((a1, ["a"]), (a2, ["a"]), (b1, ["b"]), (both, ["a", "b"])):
            for room in rooms:
                assert await c.sio.call("join", room, timeout=TIMEOUT) == "ok"
        await server.sio.emit("news", "to a", to="a", skip_sid=server.sid(a2))
        await server.sio.emit("news", "to a and b", to=["a", "b"])
        await server.sio.emit("news", "all but b1", skip_sid=[server.sid(b1)])
        await server.sio.emit("news", "end")  # a marker: once it arrives, everything before it has
        for c in (a1, a2, b1, both, none):
            await c.wait_count("/ news", 1 if c is none else 2)
            await c.wait_last("/ news", "end")
        assert a1.got["/ news"] == ["to a", "to a and b", "all but b1", "end"]
        assert a2.got["/ news"] == ["to a and b", "all but b1", "end"]
        assert b1.got["/ news"] == ["to a and b", "end"]
        assert both.got["/ news"] == ["to a", "to a and b", "all but b1", "end"]  # two rooms, one copy
        assert none.got["/ news"] == ["all but b1", "end"]


async def test_namespaces_are_kept_apart() -> None:
    async with serving(FanoutManager()) as server:
        root = await server.client(WS)
        other = await server.client(WS, namespaces=["/other"])
        both = await server.client(POLLING, namespaces=["/", "/other"])
        await server.sio.emit("news", "other", namespace="/other")
        await server.sio.emit("news", "root", namespace="/")
        assert await other.wait_count("/other news", 1) == ["other"]
        assert await both.wait_count("/other news", 1) == ["other"]
        assert await root.wait_count("/ news", 1) == ["root"]
        assert await both.wait_count("/ news", 1) == ["root"]
        assert "/other news" not in root.got and "/ news" not in other.got


@pytest.mark.parametrize("transports", [WS, POLLING], ids=["websocket", "polling"])
async def test_acks_both_ways(transports: list[str]) -> None:
    async with serving(FanoutManager()) as server:
        client = await server.client(transports)
        # server -> client with a callback: the manager's stock per-recipient path
        client.sio.on("question", lambda data: {"answer": data["n"] + 1})
        reply = await server.sio.call("question", {"n": 41}, to=server.sid(client), timeout=TIMEOUT)
        assert reply == {"answer": 42}
        # client -> server acks (FanoutServer._send_packet), many in flight, each answered once and right
        replies = await asyncio.gather(*(client.sio.call("join", f"room{i}", timeout=TIMEOUT) for i in range(10)))
        assert replies == ["ok"] * 10
        blob = await client.sio.call("binary", b"\x01\x02", timeout=TIMEOUT)
        assert blob == {"echo": b"\x01\x02"}


async def test_a_write_under_backpressure_finishes_in_a_task_and_in_order() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    order: list[str] = []

    async def blocked() -> None:
        order.append("first started")
        await gate
        order.append("first done")

    async def immediate() -> None:
        order.append("second done")

    task = run_eagerly(blocked())
    assert task is not None and order == ["first started"]  # ran synchronously up to the suspension
    assert run_eagerly(immediate()) is None and order[-1] == "second done"  # no task when it does not suspend
    gate.set_result(None)
    await asyncio.wait_for(task, TIMEOUT)
    assert order[-1] == "first done"

    async def fails() -> None:
        raise ConnectionResetError("gone")

    assert run_eagerly(fails()) is None  # a failed write is contained


@pytest.mark.redis
async def test_redis_manager_fans_out_emits_from_this_process_and_from_others(redis_url: str) -> None:
    channel = f"fanout-test-{free_port()}"
    async with serving(FanoutRedisManager(redis_url, channel=channel)) as server:
        clients = [await server.client(WS) for _ in range(4)] + [await server.client(POLLING)]
        await asyncio.sleep(0.5)  # the manager's Redis listener subscribes in the background
        await server.sio.emit("news", "from here")  # published to Redis and delivered from there
        external = socketio.AsyncRedisManager(redis_url, channel=channel, write_only=True)
        await external.emit("news", {"from": "elsewhere"}, namespace="/")
        for c in clients:
            got = await c.wait_count("/ news", 2)
            assert sorted(map(str, got)) == sorted(["from here", str({"from": "elsewhere"})])
        await asyncio.sleep(0.2)
        assert all(len(c.got["/ news"]) == 2 for c in clients)


async def test_a_client_with_per_message_deflate_gets_compressed_frames_through_hypercorn() -> None:
    """The pre-built frame is uncompressed: a connection that negotiated permessage-deflate is never given it."""
    manager = FanoutManager()
    async with serving(manager) as server:
        plain = await server.client(WS)
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url, compression="deflate") as ws:
            assert ws.protocol.extensions  # deflate was negotiated
            assert str(await ws.recv()).startswith("0{")  # Engine.IO open
            await ws.send("40")
            assert str(await ws.recv()).startswith("40{")  # Socket.IO connect
            raw_before, direct_before = manager.writes_raw, manager.writes_direct
            await server.sio.emit("news", {"text": "x" * 500})
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == '42["news",{"text":"' + "x" * 500 + '"}]'
            assert await plain.wait_count("/ news", 1) == [{"text": "x" * 500}]
            assert manager.writes_direct == direct_before + 1  # the deflate client: hypercorn's send path
            assert manager.writes_raw == raw_before + 1  # the plain client: the shared frame
