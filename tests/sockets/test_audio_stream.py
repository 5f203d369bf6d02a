"""Socket.IO namespace "/audio-stream": the handshake, oversized messages and the drain, with python-socketio's
AsyncClient against the app under hypercorn. What both front ends share is in tests/live/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from fakes import FakeDeepgram, run_fake
from tests.live.support import HANG_GUARD, TEXT, connect_socketio, register_speech, serve_live, stored, wait_until
from tests.support.live_audio import silence
from tests.support.users import make_user

INVALID = {"message": "Invalid or expired authentication token"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


async def _refused(port: int, auth: Any) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    refusal: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client.on("connect_error", lambda data=None: refusal.done() or refusal.set_result(data), namespace="/audio-stream")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            f"http://127.0.0.1:{port}",
            namespaces=["/audio-stream"],
            auth=auth,
            transports=["websocket"],
            wait_timeout=HANG_GUARD,
        )
    result = await asyncio.wait_for(refusal, HANG_GUARD)
    await client.disconnect()
    return result


async def test_a_missing_or_bad_token_is_refused_with_the_exact_text(fake: FakeDeepgram, tmp_path: Path) -> None:
    async with serve_live(tmp_path, fake) as (app, port):
        assert await _refused(port, None) == INVALID
        assert await _refused(port, {}) == INVALID
        assert await _refused(port, {"token": "usr_nobody_forged"}) == INVALID
        assert await _refused(port, {"token": "vst_forged.token"}) == INVALID
        user, key = await make_user(app)
        _, admin = await make_user(app, role="admin")
        token = app.extensions["resources"].sessions.issue(user.id)
        client = await connect_socketio(port, token)  # a PIN session token works like an API key
        try:
            await client.wait_for("connected")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await http.get("/health", headers={"x-api-key": admin})  # counts: admins only
                assert health.json()["connections"]["/audio-stream"] == 1
                assert "/audio-stream" in (await http.get("/")).json()["socketio"]["namespaces"]
        finally:
            await client.close()


async def test_a_message_over_the_socketio_buffer_drops_only_that_client(fake: FakeDeepgram, tmp_path: Path) -> None:
    """Engine.IO closes a connection whose message exceeds SOCKETIO_MAX_HTTP_BUFFER_SIZE before any handler
    sees it (documented); that client's stream is still finalised and stored, and nobody else notices."""
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        big = await connect_socketio(port, key)
        other = await connect_socketio(port, key)
        try:
            await big.start_and_wait()
            await big.send_audio(pcm[: len(pcm) // 2])
            await big.send_audio_chunk(b"\0" * (12 * 1024 * 1024))  # over the 11 MiB default buffer
            await asyncio.wait_for(big.closed.wait(), HANG_GUARD)
            await other.start_and_wait()
            await other.send_audio(pcm + silence(0.3))
            stopped = await other.stop_and_wait()
        finally:
            await big.close()
            await other.close()
        assert stopped["text"] == TEXT

        async def texts() -> list[str]:
            db = app.extensions["resources"].db()
            rows = await db.fetch_all("SELECT transcript FROM transcriptions WHERE user_id = :u", {"u": user.id})
            return sorted(row[0] for row in rows)

        found = await wait_until(lambda: _two(texts))
        assert TEXT in found and any(t.startswith("hello") and t != TEXT for t in found)


async def _two(texts: Any) -> Any:
    found = await texts()
    return found if len(found) == 2 else None


async def test_drain_finalises_and_stores_the_stream_then_disconnects(fake: FakeDeepgram, tmp_path: Path) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        client = await connect_socketio(port, key)
        try:
            await client.start_and_wait()
            await client.send_audio(pcm[: len(pcm) * 2 // 3])
            await client.wait_for("transcript", lambda p: p["is_final"] and p["text"] == "how")
            await app.extensions["drainer"].drain()
            await asyncio.wait_for(client.closed.wait(), HANG_GUARD)
        finally:
            await client.close()
        assert client.recorder.names()[-3:] == ["error", "stopped", "disconnect"]
        assert client.of("error")[-1]["code"] == "server_restarting"
        stopped = client.of("stopped")[0]
        assert stopped["text"].startswith("hello world, how")
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == stopped["text"]
