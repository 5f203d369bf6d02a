"""Floor for bench/realtime_calls.py: hypercorn receiving Media Streams frames and doing nothing else.

    hypercorn --config hypercorn.toml bench.peers.media_stream_floor:app

A bare ASGI app (no Quart): accepts the WebSocket and `json.loads` each message. Its CPU per call is what the
server stack itself costs to receive 50 frames a second, before any relaying: no relay on hypercorn can be
cheaper than this.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            json.loads(message.get("text") or "{}")
