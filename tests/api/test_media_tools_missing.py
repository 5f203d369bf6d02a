"""A server whose PATH has no ffmpeg/ffprobe: media routes answer 503 before the body, the rest keeps serving."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fakes import FakeDeepgram, FakeOpenAI, FakeServerThread
from quart_app.db import api_keys, users
from quart_app.db.database import connect, open_database
from quart_app.db.tables import transcription_jobs, transcriptions, usage_logs
from quart_app.settings import Settings
from tests.support.audio import spoken
from tests.support.users import admin_key_in, unique_email

LIMIT_MB = 0.1


async def _user_key(database_url: str) -> str:
    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        user = await users.create_user(db, email=unique_email("media"), role="user")
        _, key = await api_keys.create_api_key(db, user.id, "test")
    finally:
        await db.disconnect()
    return key


async def _rows(database_url: str) -> dict[str, int]:
    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        return {
            table.name: len(await db.fetch_all(sa.select(table)))
            for table in (transcription_jobs, usage_logs, transcriptions)
        }
    finally:
        await db.disconnect()


def _headers_only(port: int, key: str, path: str) -> tuple[int, bytes]:
    """Send only the headers of a 50 MB multipart upload and read the answer: a server that read the body first
    would never answer (the socket timeout fails the test instead)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 52428800\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"--xyz\r\n")
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
            block = sock.recv(65536)
            if not block:
                break
            received += block
    status_line = received.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), received


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def test_media_routes_are_an_outage_without_ffmpeg(live_server_factory, tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    jobs_dir = tmp_path / "jobs"
    big = spoken("The budget review is moved to Thursday afternoon.", "wav") * 3  # over LIMIT_MB
    assert len(big) > LIMIT_MB * 1024 * 1024
    small = spoken("Hello there.", "wav")
    openai = FakeOpenAI(api_key="sk-test", max_request_bytes=int(LIMIT_MB * 1024 * 1024))
    deepgram = FakeDeepgram(api_key="dg-key")
    with FakeServerThread(openai, deepgram):
        deepgram_url = deepgram.base_url
        env = {
            "PATH": str(empty_bin),  # a real PATH without the tools, for the server process only
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": openai.base_url + "/v1",
            "OPENAI_TRANSCRIBE_MAX_MB": str(LIMIT_MB),
            "DEEPGRAM_API_KEY": "dg-key",
            "DEEPGRAM_BASE_URL": deepgram_url,
            "JOBS_DIR": str(jobs_dir),
        }
        server = live_server_factory(**env)  # ready (/health 200) although the tools are missing
        database_url = server.env["DATABASE_URL"]
        key = await _user_key(database_url)
        admin = await admin_key_in(database_url)
        headers = {"x-api-key": key}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            job = await client.post(
                "/transcriptions/jobs",
                headers=headers,
                files={"audio": ("talk.wav", small)},
                data={"provider": "openai"},
            )
            assert job.status_code == 503, job.text
            assert job.json()["error"] == "media_tools_unavailable"
            assert set(job.json()["missing"]) == {"ffmpeg", "ffprobe"}
            assert "ffmpeg" in job.json()["message"]

            whisper = await client.post("/transcriptions/whisper", headers=headers, files={"audio": ("long.wav", big)})
            assert whisper.status_code == 503, whisper.text
            assert whisper.json()["error"] == "media_tools_unavailable"

            # What needs no media tool still works: Deepgram measures the audio itself.
            plain = await client.post("/transcriptions/deepgram", headers=headers, files={"audio": ("hi.wav", small)})
            assert plain.status_code == 200, plain.text

            public = await client.get("/health")
            assert public.status_code == 200
            assert public.json()["status"] == "healthy"
            assert public.json()["checks"]["media_tools"] == {"status": "error"}
            detail = (await client.get("/health", headers={"x-api-key": admin})).json()
            assert detail["checks"]["media_tools"]["ffmpeg"] == "missing"
            assert detail["checks"]["media_tools"]["ffprobe"] == "missing"

        status, raw = await asyncio.to_thread(_headers_only, server.port, key, "/transcriptions/jobs")
        assert status == 503 and b"media_tools_unavailable" in raw

        # Nothing stored, nothing billed but the Deepgram call; no file left behind.
        assert await _rows(database_url) == {"transcription_jobs": 0, "usage_logs": 1, "transcriptions": 1}
        assert not jobs_dir.exists() or list(jobs_dir.rglob("*")) == []
        assert not openai.requests_to("/v1/audio/transcriptions")


@pytest.fixture(autouse=True)
def _no_stray_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
