"""The floor for live streaming: a bare ASGI WebSocket app that forwards a client's audio straight to Deepgram.

    DEEPGRAM_BASE_URL=http://127.0.0.1:8799 DEEPGRAM_API_KEY=... hypercorn --config hypercorn.toml \
        bench.peers.live_forwarder:app

Same hypercorn config and the same `websockets` library under the upstream connection as our service (the
Deepgram SDK uses it), but no Quart, no auth, no database, no limits, no replay buffer, no KeepAlive, no
persistence: binary frames go upstream as they come, Deepgram's messages come back verbatim.
Protocol (a subset of ours): `{"type":"start", encoding, sample_rate}` -> `{"type":"started"}`; audio; `{"type":
"stop"}` -> CloseStream, then `{"type":"stopped"}` once Deepgram has closed.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlencode

import websockets

Scope = dict[str, Any]


def _upstream_url(start: dict[str, Any]) -> str:
    base = os.environ.get("DEEPGRAM_BASE_URL", "https://api.deepgram.com").rstrip("/")
    base = "ws" + base[4:] if base.startswith("http") else base
    query = {
        "model": "nova-3",
        "encoding": start.get("encoding", "linear16"),
        "sample_rate": start.get("sample_rate", 16000),
        "interim_results": "true",
        "punctuate": "true",
    }
    return f"{base}/v1/listen?{urlencode(query)}"


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"live forwarder"})
        return
    await _websocket(receive, send)


async def _websocket(receive: Any, send: Any) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    upstream: websockets.ClientConnection | None = None
    relay: asyncio.Task[None] | None = None
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                if upstream is not None:
                    await upstream.send(data)
                continue
            command = json.loads(message.get("text") or "{}")
            if command.get("type") == "start" and upstream is None:
                key = os.environ.get("DEEPGRAM_API_KEY", "")
                upstream = await websockets.connect(
                    _upstream_url(command), additional_headers={"Authorization": f"Token {key}"}
                )
                relay = asyncio.create_task(_relay(upstream, send))
                await send({"type": "websocket.send", "text": json.dumps({"type": "started"})})
            elif command.get("type") == "stop" and upstream is not None and relay is not None:
                await upstream.send(json.dumps({"type": "CloseStream"}))
                await relay
                upstream, relay = None, None
                await send({"type": "websocket.send", "text": json.dumps({"type": "stopped"})})
    finally:
        if relay is not None:
            relay.cancel()
        if upstream is not None:
            await upstream.close()


async def _relay(upstream: websockets.ClientConnection, send: Any) -> None:
    try:
        async for message in upstream:
            await send({"type": "websocket.send", "text": message if isinstance(message, str) else message.decode()})
    except websockets.ConnectionClosed:
        pass
