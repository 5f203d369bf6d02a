"""SIGTERM to a real hypercorn process with a live stream open on each front end: both streams are finalised
(`error` server_restarting, then `stopped` with the stored id), stored and metered before the process exits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bench.harness import create_api_key_async
from fakes import FakeDeepgram, FakeServerThread
from quart_app.db.database import connect, open_database
from quart_app.settings import Settings
from tests.live.support import HANG_GUARD, TEXT, connect_socketio, connect_websocket, register_speech
from tests.support.live_server import LiveServer


async def test_sigterm_mid_stream_stores_the_text_of_every_open_stream(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/app.db"  # the live server's default (base_env)
    key = await create_api_key_async(database_url)
    with FakeServerThread(FakeDeepgram()) as fake:
        pcm = register_speech(fake)
        server = live_server_factory(DEEPGRAM_API_KEY=fake.api_key, DEEPGRAM_BASE_URL=fake.base_url)
        clients = [await connect_websocket(server.port, key), await connect_socketio(server.port, key)]
        try:
            for client in clients:
                await client.wait_for("connected")
                await client.start_and_wait()
                await client.send_audio(pcm[: len(pcm) * 2 // 3])
            for client in clients:
                await client.wait_for("transcript", lambda p: p["is_final"] and p["text"] == "how")
            server.signal()
            for client in clients:
                await asyncio.wait_for(client.closed.wait(), HANG_GUARD)
            code = await asyncio.to_thread(server.wait_exit, HANG_GUARD)
        finally:
            for client in clients:
                try:
                    await client.close()
                except Exception:  # the server is gone; the assertions below decide
                    pass
        assert code == 0, server.output()
        stopped = []
        for client in clients:
            assert client.recorder.names()[-3:] == ["error", "stopped", "disconnect"], client.kind
            assert client.of("error")[-1]["code"] == "server_restarting"
            stopped.append(client.of("stopped")[0])
        assert [c.control_types[-1] for c in fake.live_connections] == ["CloseStream", "CloseStream"]

    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        rows = await db.fetch_all("SELECT id, transcript, source FROM transcriptions ORDER BY id")
        usage = await db.fetch_all("SELECT request_id, audio_seconds FROM usage_logs")
    finally:
        await db.disconnect()
    assert sorted((r[0], r[1]) for r in rows) == sorted((s["transcription_id"], s["text"]) for s in stopped)
    assert all(r[2] == "stream" and r[1].startswith("hello world, how") for r in rows)
    assert TEXT.startswith(stopped[0]["text"].rsplit(" ", 1)[0])
    assert len(usage) == 2 and all(u[1] > 0 for u in usage)
