"""Stream a WAV file to /audio-stream in real time and print what the service hears.

    .venv/bin/python scripts/stream_wav.py speech.wav --key usr_...                 # plain WebSocket
    .venv/bin/python scripts/stream_wav.py speech.wav --key usr_... --socketio      # Socket.IO "/audio-stream"
    .venv/bin/python scripts/stream_wav.py speech.wav --token "$JWT" --url https://voice.example.com --lang en

The WAV must be 16-bit PCM (any rate, any channel count; `sox in.wav -b 16 out.wav` converts others). It is
sent in 20 ms chunks at the pace it would be spoken (`--speed 2` twice as fast, `--speed 0` as fast as
possible). Interim results are shown as they change, final ones on their own line, then the stored
transcription's id. Exit code 0 when the stream ended with `stopped`, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import socketio
import websockets

NAMESPACE = "/audio-stream"


def read_wav(path: Path) -> tuple[bytes, int, int]:
    """(PCM frames, sample rate, channels) of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getcomptype() != "NONE":
            raise SystemExit(f"{path}: 16-bit PCM WAV needed (try: sox {path} -b 16 out.wav)")
        return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()


class Printer:
    """Interim results overwrite one line on a terminal; finals and everything else get their own line."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.pending = False

    def interim(self, text: str) -> None:
        if self.tty:
            sys.stdout.write("\r\033[K… " + text)
            sys.stdout.flush()
            self.pending = True

    def line(self, text: str) -> None:
        if self.pending:
            sys.stdout.write("\r\033[K")
            self.pending = False
        print(text, flush=True)


async def stream(args: argparse.Namespace) -> int:
    pcm, rate, channels = read_wav(args.wav)
    chunk = max(2 * channels, int(rate * args.chunk_ms / 1000) * 2 * channels)
    printer = Printer()
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    started = asyncio.Event()
    refused: list[dict[str, Any]] = []

    def on_event(event: str, payload: dict[str, Any]) -> None:
        if event == "transcript":
            if payload["is_final"]:
                printer.line(f"[{payload['start']:7.2f}s] {payload['text']}")
            else:
                printer.interim(payload["text"])
        elif event == "started":
            started.set()
        elif event == "error":
            printer.line(f"error {payload.get('code')}: {payload.get('message')}")
            if not started.is_set():  # `start` was refused
                refused.append(payload)
                started.set()
        elif event == "stopped":
            if not done.done():
                done.set_result(payload)
        elif event == "connected" and args.verbose:
            printer.line(f"connected, session {payload.get('session_id')}")

    options = {"encoding": "linear16", "sample_rate": rate, "channels": channels}
    if args.lang:
        options["language"] = args.lang
    connect = connect_socketio if args.socketio else connect_websocket
    send_json, send_audio, close = await connect(args, on_event)
    try:
        await send_json("start", options)
        await asyncio.wait_for(started.wait(), 30)
        if refused:
            return 1
        began = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm), chunk)):
            if args.speed > 0:
                due = began + index * args.chunk_ms / 1000 / args.speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await send_audio(pcm[offset : offset + chunk])
            if done.done():
                break
        await send_json("stop", None)
        stopped = await asyncio.wait_for(done, 60)
    finally:
        await close()
    printer.line(f"stopped: {stopped['duration_s']:.2f} s of audio, transcription {stopped['transcription_id']}")
    printer.line(stopped["text"])
    return 0


Sender = Callable[[str, Any], Awaitable[None]]
AudioSender = Callable[[bytes], Awaitable[None]]
Closer = Callable[[], Awaitable[None]]


def _headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.token}"} if args.token else {"x-api-key": args.key}


async def connect_websocket(
    args: argparse.Namespace, on_event: Callable[[str, dict[str, Any]], None]
) -> tuple[Sender, AudioSender, Closer]:
    base = args.url.rstrip("/").replace("http", "ws", 1)
    query = f"?lang={args.lang}" if args.lang else ""
    ws = await websockets.connect(f"{base}/audio-stream{query}", additional_headers=_headers(args))

    async def read() -> None:
        try:
            async for message in ws:
                body = json.loads(message)
                on_event(body.pop("type"), body)
        except websockets.ConnectionClosed:
            pass

    reader = asyncio.create_task(read())

    async def send_json(kind: str, payload: Any) -> None:
        await ws.send(json.dumps({"type": kind, **(payload or {})}))

    async def close() -> None:
        await ws.close()
        await reader

    return send_json, ws.send, close


async def connect_socketio(
    args: argparse.Namespace, on_event: Callable[[str, dict[str, Any]], None]
) -> tuple[Sender, AudioSender, Closer]:
    client = socketio.AsyncClient(reconnection=False)
    for name in ("connected", "started", "transcript", "utterance_end", "stopped", "error"):
        client.on(name, lambda data=None, name=name: on_event(name, data or {}), namespace=NAMESPACE)
    query = f"?lang={args.lang}" if args.lang else ""
    await client.connect(
        args.url.rstrip("/") + query,
        namespaces=[NAMESPACE],
        auth={"token": args.token or args.key},
        transports=["websocket"],
    )

    async def send_json(kind: str, payload: Any) -> None:
        await client.emit(kind, payload, namespace=NAMESPACE)

    async def send_audio(data: bytes) -> None:
        await client.emit("audio", data, namespace=NAMESPACE)

    return send_json, send_audio, client.disconnect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav", type=Path)
    parser.add_argument("--url", default=os.environ.get("VOICE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("VOICE_API_KEY"), help="API key (or VOICE_API_KEY)")
    parser.add_argument("--token", help="an Auth0 access token or vst_ session token instead of an API key")
    parser.add_argument("--socketio", action="store_true", help="use Socket.IO instead of the plain WebSocket")
    parser.add_argument("--lang", help="language code, e.g. en or pt-BR")
    parser.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.key and not args.token:
        parser.error("give --key (or VOICE_API_KEY) or --token")
    try:
        return asyncio.run(stream(args))
    except SystemExit as exc:
        return int(exc.code or 1)
    except (OSError, websockets.InvalidStatus, socketio.exceptions.ConnectionError, TimeoutError) as exc:
        print(f"stream failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
