"""The plain WebSocket `/audio-stream`: upgrade auth, framing, oversized and empty frames, and the drain.

What both front ends share (words, limits, reconnects) is in tests/live/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from fakes import FakeDeepgram, run_fake
from tests.live.support import HANG_GUARD, TEXT, connect_websocket, register_speech, serve_live, stored
from tests.support.live_audio import silence
from tests.support.users import make_user


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


async def _refusal(port: int, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(f"ws://127.0.0.1:{port}/audio-stream", additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def test_upgrade_needs_a_valid_credential_and_greets_first(fake: FakeDeepgram, tmp_path: Path) -> None:
    async with serve_live(tmp_path, fake) as (app, port):
        status, body = await _refusal(port, {})
        assert (status, body["error"]) == (401, "unauthorized")
        status, body = await _refusal(port, {"x-api-key": "usr_nobody_forged"})
        assert (status, body["error"]) == (401, "invalid_token")

        user, key = await make_user(app)
        token = app.extensions["resources"].sessions.issue(user.id)
        for headers in ({"x-api-key": key}, {"Authorization": f"Bearer {token}"}):
            async with websockets.connect(f"ws://127.0.0.1:{port}/audio-stream", additional_headers=headers) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), HANG_GUARD))
                assert set(first) == {"type", "message", "session_id"}
                assert (first["type"], first["message"]) == ("connected", "Successfully connected")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            index = (await http.get("/")).json()
        assert "/audio-stream" in index["websockets"]


async def test_a_10_mb_frame_is_refused_and_empty_frames_are_ignored(fake: FakeDeepgram, tmp_path: Path) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        client = await connect_websocket(port, key)
        try:
            await client.wait_for("connected")
            await client.start_and_wait()
            await client.send_audio_chunk(b"\0" * (10 * 1024 * 1024))
            error = await client.wait_for("error")
            assert error["code"] == "chunk_too_large" and error["max_bytes"] == 256 * 1024
            await client.send_audio_chunk(b"")
            await client.send_audio(pcm + silence(0.3))
            stopped = await client.stop_and_wait()
        finally:
            await client.close()
        assert client.error_codes() == ["chunk_too_large"]
        assert stopped["text"] == TEXT
        assert fake.live_connection().bytes_received == len(pcm) + 9600
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == TEXT


async def test_drain_finalises_and_stores_the_stream_then_closes_with_1001(fake: FakeDeepgram, tmp_path: Path) -> None:
    pcm = register_speech(fake)
    async with serve_live(tmp_path, fake) as (app, port):
        user, key = await make_user(app)
        _, admin = await make_user(app, role="admin")
        client = await connect_websocket(port, key)
        idle = await connect_websocket(port, key)  # connected, no stream
        try:
            await client.wait_for("connected")
            await idle.wait_for("connected")
            await client.start_and_wait()
            await client.send_audio(pcm[: len(pcm) * 2 // 3])
            await client.wait_for("transcript", lambda p: p["is_final"] and p["text"] == "how")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await http.get("/health", headers={"x-api-key": admin})  # counts: admins only
                assert health.json()["connections"]["audio-stream"] == 2
            await app.extensions["drainer"].drain()
            await asyncio.wait_for(client.closed.wait(), HANG_GUARD)
            await asyncio.wait_for(idle.closed.wait(), HANG_GUARD)
        finally:
            await client.close()
            await idle.close()
        names = client.recorder.names()
        assert names[-3:] == ["error", "stopped", "disconnect"]
        assert client.of("error")[-1]["code"] == "server_restarting"
        assert client.close_code == idle.close_code == 1001
        assert idle.recorder.names() == ["connected", "disconnect"]
        stopped = client.of("stopped")[0]
        assert stopped["text"].startswith("hello world, how")
        assert (await stored(app, user.id, stopped["transcription_id"])).transcript == stopped["text"]
        assert fake.live_connection().control_types[-1] == "CloseStream"
