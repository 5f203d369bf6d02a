"""Media Streams upgrades are signature-checked: a bad or missing X-Twilio-Signature closes with 1008.

The realtime call route uses `refuse_unsigned_stream()`; here a probe route mounted on a real app under a
live hypercorn exercises the guard with a real WebSocket client.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets
from quart import websocket
from twilio.request_validator import RequestValidator

from quart_app import create_app
from quart_app.settings import Settings
from quart_app.telephony.guards import refuse_unsigned_stream

TOKEN = "stream-test-auth-token-0123456789"
PUBLIC = "https://voice.example.com"


def _app(tmp_path):  # type: ignore[no-untyped-def]
    app = create_app(
        Settings.from_env(
            {
                "APP_ENV": "test",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ws.db",
                "TWILIO_ACCOUNT_SID": "AC" + "4" * 32,
                "TWILIO_AUTH_TOKEN": TOKEN,
                "PUBLIC_BASE_URL": PUBLIC,
            }
        )
    )

    @app.websocket("/probe/media-stream")
    async def probe() -> None:
        if await refuse_unsigned_stream():
            return
        await websocket.accept()
        await websocket.send("accepted")

    return app


@pytest.fixture
async def server(tmp_path):  # type: ignore[no-untyped-def]
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from tests.support.live_server import free_port

    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(_app(tmp_path), config, shutdown_trigger=shutdown.wait))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    yield port
    shutdown.set()
    await task


async def _close_code(port: int, headers: dict[str, str]) -> tuple[int | None, str | None]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/probe/media-stream", additional_headers=headers) as ws:
        try:
            message = await asyncio.wait_for(ws.recv(), 5)
            return None, message
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None, None


async def test_bad_and_missing_signatures_close_with_1008(server: int) -> None:
    assert (await _close_code(server, {}))[0] == 1008
    assert (await _close_code(server, {"X-Twilio-Signature": "Zm9yZ2VkIHNpZw=="}))[0] == 1008
    http_signed = RequestValidator(TOKEN).compute_signature("ws://voice.example.com/probe/media-stream", {})
    assert (await _close_code(server, {"X-Twilio-Signature": http_signed}))[0] == 1008


async def test_signature_over_the_public_wss_url_is_accepted(server: int) -> None:
    signature = RequestValidator(TOKEN).compute_signature("wss://voice.example.com/probe/media-stream", {})
    code, message = await _close_code(server, {"X-Twilio-Signature": signature})
    assert code is None and message == "accepted"
