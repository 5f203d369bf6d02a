"""The floor for Socket.IO round trips: a bare python-socketio ASGI app with one echo-style ack handler.

Same python-socketio/engineio versions and hypercorn config as our service, no Quart, no sessions, no
auth, so the difference from ours is the cost of our own stack around the same transport.

    hypercorn --config hypercorn.toml bench.peers.bare_socketio:app
"""

from __future__ import annotations

import time
from typing import Any

import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)
app = socketio.ASGIApp(sio, socketio_path="socket.io")


@sio.on("ping_server")
async def ping_server(sid: str, data: Any = None) -> dict[str, Any]:
    return {"server_time": time.time()}
