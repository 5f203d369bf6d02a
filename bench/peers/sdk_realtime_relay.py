"""Peer for bench/realtime_calls.py: the Twilio ⇄ OpenAI Realtime relay as the public samples write it.

    PEER_REALTIME_URL=ws://127.0.0.1:PORT/v1 hypercorn --config hypercorn.toml bench.peers.sdk_realtime_relay:app

One Quart websocket route, `/media-stream`; after `start` it opens `client.realtime.connect` and relays with the
SDK's typed helpers: `conn.input_audio_buffer.append(audio=...)` per frame, `async for event in conn` (every
event parsed into its pydantic model), `response.output_audio.delta` → Twilio `media` + `mark`,
`speech_started` → `clear` + `conversation.item.truncate` from media timestamps. No signatures, tenants,
records, handoff or tools: only the relay itself, measured the same way as ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from openai import AsyncOpenAI
from quart import Quart, websocket

app = Quart(__name__)
_client: AsyncOpenAI | None = None


def client() -> AsyncOpenAI:
    global _client
    if _client is None:
        _client = AsyncOpenAI(api_key="sk-bench", websocket_base_url=os.environ["PEER_REALTIME_URL"], max_retries=0)
    return _client


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/media-stream")
async def media_stream() -> None:
    await websocket.accept()
    stream_sid = ""
    while not stream_sid:
        message = json.loads(await websocket.receive())
        if message.get("event") == "start":
            stream_sid = message["start"]["streamSid"]
    state: dict[str, Any] = {"latest_ms": 0, "item": None, "started_ms": None, "marks": 0}
    async with client().realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "You are a helpful phone agent.",
                "audio": {
                    "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
                    "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
                },
            }
        )

        async def from_openai() -> None:
            async for event in conn:
                if event.type == "response.output_audio.delta":
                    if state["started_ms"] is None:
                        state["started_ms"] = state["latest_ms"]
                    state["item"] = event.item_id
                    await websocket.send(
                        json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": event.delta}})
                    )
                    state["marks"] += 1
                    await websocket.send(
                        json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "responsePart"}})
                    )
                elif event.type == "input_audio_buffer.speech_started" and state["item"] and state["marks"]:
                    elapsed = state["latest_ms"] - (state["started_ms"] or 0)
                    await conn.conversation.item.truncate(item_id=state["item"], content_index=0, audio_end_ms=elapsed)
                    await websocket.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
                    state.update(item=None, started_ms=None, marks=0)

        reader = asyncio.create_task(from_openai())
        try:
            while True:
                message = json.loads(await websocket.receive())
                event = message.get("event")
                if event == "media":
                    state["latest_ms"] = int(message["media"]["timestamp"])
                    await conn.input_audio_buffer.append(audio=message["media"]["payload"])
                elif event == "mark":
                    state["marks"] = max(0, state["marks"] - 1)
                elif event == "stop":
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
