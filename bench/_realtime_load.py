"""Helpers for bench/realtime_calls.py: a cheap Realtime (GA) server and a Twilio Media Streams load generator.

    python bench/_realtime_load.py fake --port 8765    # the provider, in a process of its own

The fake is not FakeRealtime (whose per-frame numpy VAD would be the bottleneck at a few hundred calls): it
answers `session.update`, counts `input_audio_buffer.append`s, and after every `--turn-frames` appended frames
plays one turn: `speech_started`, `speech_stopped`, the caller's transcript, `response.created`, `--reply-deltas`
audio deltas of 100 ms μ-law 100 ms apart, the transcript, `response.done` with usage (each session's cycle
starts at a random point, as independent callers' turns would). Every frame the load
generator sends and every delta the fake sends starts with its send time (8 bytes, `time.monotonic()`, the
same clock in every process of the machine), so one-way latency through the relay is read at the other end.
`GET /stats[?reset=1]` answers the counts and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import re
import secrets
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from fakes.twilio import sign  # noqa: E402

FRAME = 160  # 20 ms of μ-law
DELTA = 800  # 100 ms of μ-law
STAMP = struct.Struct("<d")
# The first 12 base64 characters of an append's audio carry the send time (8 bytes); any JSON spacing.
APPEND_AUDIO = re.compile(r'"audio"\s*:\s*"([A-Za-z0-9+/=]{12})')


def stamped(size: int) -> str:
    return base64.b64encode(STAMP.pack(time.monotonic()) + b"\xff" * (size - STAMP.size)).decode()


def read_stamp(payload: str) -> float:
    return float(STAMP.unpack(base64.b64decode(payload[:12])[:8])[0])


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(values)

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    return {
        "n": len(ordered),
        "p50_ms": round(pick(50), 2),
        "p99_ms": round(pick(99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


# ----- the provider ----------------------------------------------------------------------------------------


@dataclass
class FakeStats:
    appends: int = 0
    deltas: int = 0
    sessions: int = 0
    open: int = 0
    latencies: list[float] = field(default_factory=list)


class BenchRealtime:
    def __init__(self, turn_frames: int, reply_deltas: int) -> None:
        self.turn_frames = turn_frames
        self.reply_deltas = reply_deltas
        self.stats = FakeStats()

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/stats"):
            body = {
                "appends": self.stats.appends,
                "deltas": self.stats.deltas,
                "sessions": self.stats.sessions,
                "open": self.stats.open,
                "inbound": percentiles(self.stats.latencies),
            }
            if "reset=1" in request.path:
                self.stats.latencies = []
            return connection.respond(HTTPStatus.OK, json.dumps(body))
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.stats.sessions += 1
        self.stats.open += 1
        sid = "sess_" + secrets.token_hex(8)
        frames = secrets.randbelow(self.turn_frames)  # calls are not in step: their turns fall anywhere in the cycle
        replies: set[asyncio.Task[None]] = set()
        await ws.send(json.dumps({"type": "session.created", "event_id": "e", "session": {"id": sid}}))
        try:
            async for message in ws:
                # Appends are 50 a second per call: read their stamp without parsing the whole event, so this
                # fake keeps up with hundreds of calls on the load core (other events are parsed normally).
                event: dict[str, Any] = {}
                fast = isinstance(message, str) and '"input_audio_buffer.append"' in message[:64]
                audio = APPEND_AUDIO.search(message) if fast else None
                if audio is None:
                    event = json.loads(message)
                if audio is not None or event.get("type") == "input_audio_buffer.append":
                    stamp = audio.group(1) if audio is not None else event["audio"]
                    self.stats.latencies.append(time.monotonic() - read_stamp(stamp))
                    self.stats.appends += 1
                    frames += 1
                    if frames % self.turn_frames == 0:
                        task = asyncio.create_task(self.turn(ws, frames // self.turn_frames))
                        replies.add(task)
                        task.add_done_callback(replies.discard)
                elif event.get("type") == "session.update":
                    await ws.send(json.dumps({"type": "session.updated", "event_id": "e", "session": event["session"]}))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.stats.open -= 1
            for task in replies:
                task.cancel()

    async def turn(self, ws: ServerConnection, n: int) -> None:
        user, item, response = f"item_u{n}", f"item_a{n}", f"resp_{n}"
        for event in (
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": user},
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 0, "item_id": user},
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": user,
                "content_index": 0,
                "transcript": f"caller turn {n}",
            },
            {"type": "response.created", "response": {"id": response, "status": "in_progress"}},
        ):
            await ws.send(json.dumps({"event_id": "e", **event}))
        for _ in range(self.reply_deltas):
            await ws.send(
                json.dumps(
                    {
                        "type": "response.output_audio.delta",
                        "event_id": "e",
                        "response_id": response,
                        "item_id": item,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": stamped(DELTA),
                    }
                )
            )
            self.stats.deltas += 1
            await asyncio.sleep(0.1)
        usage = {
            "total_tokens": 120,
            "input_tokens": 100,
            "output_tokens": 20,
            "input_token_details": {"cached_tokens": 64, "audio_tokens": 40},
            "output_token_details": {"audio_tokens": 20},
        }
        await ws.send(
            json.dumps(
                {
                    "type": "response.output_audio_transcript.done",
                    "event_id": "e",
                    "response_id": response,
                    "item_id": item,
                    "transcript": f"agent turn {n}",
                }
            )
        )
        await ws.send(
            json.dumps(
                {
                    "type": "response.done",
                    "event_id": "e",
                    "response": {
                        "id": response,
                        "status": "completed",
                        "usage": usage,
                        "output": [{"id": item, "type": "message", "content": [{"type": "output_audio"}]}],
                    },
                }
            )
        )


async def run_fake(port: int, turn_frames: int, reply_deltas: int) -> None:
    fake = BenchRealtime(turn_frames, reply_deltas)
    async with serve(
        fake.handler,
        "127.0.0.1",
        port,
        process_request=fake.process_request,
        max_size=None,
        compression=None,
        ping_interval=None,
    ):
        print("ready", flush=True)
        await asyncio.Future()


# ----- the calls ---------------------------------------------------------------------------------------------


@dataclass
class LoadCall:
    n: int
    ws: Any = None
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    sent: int = 0
    media_in: int = 0
    marks_in: int = 0
    clears: int = 0
    play_end: float = 0.0
    marks: deque[tuple[float, str]] = field(default_factory=deque)
    reader: asyncio.Task[None] | None = None
    closed: bool = False


class LoadGenerator:
    """M Twilio calls to one Media Streams URL: a frame every 20 ms each (in staggered groups), marks echoed
    when the audio before them has played (at once after a `clear`), media latency read from the stamps."""

    def __init__(self, url: str, *, auth_token: str | None, public_url: str | None, parameters: dict[str, str]) -> None:
        self.url = url
        self.auth_token = auth_token
        self.public_url = public_url or url
        self.parameters = parameters
        self.calls: list[LoadCall] = []
        self.outbound: list[float] = []
        self.late: list[float] = []
        self._sending: asyncio.Task[None] | None = None

    async def connect(self, count: int, batch: int = 25, call_sids: list[str] | None = None) -> None:
        """Open `count` streams (`call_sids`: the calls' SIDs, e.g. ones a router has already connected)."""
        start = len(self.calls)
        sids = call_sids or ["CA" + secrets.token_hex(16) for _ in range(count)]
        for first in range(start, start + count, batch):
            group = [LoadCall(n, call_sid=sids[n - start]) for n in range(first, min(first + batch, start + count))]
            await asyncio.gather(*(self._open(call) for call in group))
            self.calls.extend(group)

    async def _open(self, call: LoadCall) -> None:
        headers = {}
        if self.auth_token:
            headers["X-Twilio-Signature"] = sign(self.public_url, None, self.auth_token)
        call.ws = await websockets.connect(
            self.url, additional_headers=headers, compression=None, max_size=None, ping_interval=None, open_timeout=30
        )
        await call.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": "AC" + "0" * 32,
            "streamSid": call.stream_sid,
            "callSid": call.call_sid,
            "tracks": ["inbound"],
            "customParameters": dict(self.parameters, call_sid=call.call_sid),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await call.ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": call.stream_sid})
        )
        call.reader = asyncio.create_task(self._read(call))

    async def _read(self, call: LoadCall) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for raw in call.ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    payload = message["media"]["payload"]
                    now = time.monotonic()
                    self.outbound.append(now - read_stamp(payload))
                    call.media_in += 1
                    duration = len(payload) * 3 / 4 / 8000
                    call.play_end = max(call.play_end, loop.time()) + duration
                elif event == "mark":
                    call.marks.append((max(call.play_end, loop.time()), message["mark"]["name"]))
                elif event == "clear":
                    call.clears += 1
                    call.play_end = loop.time()
                    call.marks = deque((0.0, name) for _, name in call.marks)
        except websockets.ConnectionClosed:
            pass
        finally:
            call.closed = True

    def start_sending(self, groups: int = 10) -> None:
        self._sending = asyncio.create_task(self._send_loop(groups))

    async def stop_sending(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
            try:
                await self._sending
            except asyncio.CancelledError:
                pass
            self._sending = None

    async def _send_loop(self, groups: int) -> None:
        loop = asyncio.get_running_loop()
        period = 0.020
        started = loop.time()
        tick = 0
        while True:
            for group in range(groups):
                due = started + tick * period + group * period / groups
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.late.append(-delay)
                now = loop.time()
                for call in self.calls[group::groups]:
                    if call.closed:
                        continue
                    call.sent += 1
                    frame = (
                        '{"event":"media","sequenceNumber":"'
                        + str(call.sent + 1)
                        + '","streamSid":"'
                        + call.stream_sid
                        + '","media":{"track":"inbound","chunk":"'
                        + str(call.sent)
                        + '","timestamp":"'
                        + str(call.sent * 20)
                        + '","payload":"'
                        + stamped(FRAME)
                        + '"}}'
                    )
                    try:
                        await call.ws.send(frame)
                        while call.marks and call.marks[0][0] <= now:
                            _, name = call.marks.popleft()
                            call.marks_in += 1
                            await call.ws.send(
                                '{"event":"mark","streamSid":"' + call.stream_sid + '","mark":{"name":"' + name + '"}}'
                            )
                    except websockets.ConnectionClosed:
                        call.closed = True
            tick += 1

    async def hangup(self) -> None:
        async def close(call: LoadCall) -> None:
            try:
                await call.ws.send(
                    json.dumps(
                        {
                            "event": "stop",
                            "streamSid": call.stream_sid,
                            "stop": {"accountSid": "AC", "callSid": call.call_sid},
                        }
                    )
                )
                await call.ws.close()
            except websockets.ConnectionClosed:
                pass

        await asyncio.gather(*(close(c) for c in self.calls))
        await asyncio.gather(*(c.reader for c in self.calls if c.reader is not None), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["fake"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--turn-frames", type=int, default=200)
    parser.add_argument("--reply-deltas", type=int, default=20)
    args = parser.parse_args()
    with harness.uvloop_policy():  # like the servers: the fake must not be the slowest loop in the room
        asyncio.run(run_fake(args.port, args.turn_frames, args.reply_deltas))


if __name__ == "__main__":
    main()
