"""The floor for Socket.IO: a bare python-socketio ASGI app with the benchmarks' small protocol.

Same python-socketio/engineio versions and hypercorn config as our service, no Quart, no sessions, no
auth, so the difference from ours is the cost of our own stack around the same transport.

    hypercorn --config hypercorn.toml bench.peers.bare_socketio:app

`ping_server` (bench/socketio_latency.py) acks the server time; the protocol shared by every capacity peer
(bench/capacity.py): "echo" acks its argument, "broadcast" emits "broadcast" with the same argument to every
client of "/", and GET /health/live answers {"status": "ok"} (any other path 404).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)

LIVE = b'{"status":"ok"}'


async def http_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    """Everything that is not /socket.io/: lifespan, and a trivial JSON health route."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    found = scope["path"] == "/health/live"
    body = LIVE if found else b""
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = socketio.ASGIApp(sio, other_asgi_app=http_app, socketio_path="socket.io")


@sio.on("ping_server")
async def ping_server(sid: str, data: Any = None) -> dict[str, Any]:
    return {"server_time": time.time()}


@sio.on("echo")
async def echo(sid: str, data: Any = None) -> Any:
    return data


@sio.on("broadcast")
async def broadcast(sid: str, data: Any = None) -> None:
    await sio.emit("broadcast", data)
