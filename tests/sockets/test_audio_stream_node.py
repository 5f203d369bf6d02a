"""The official npm socket.io-client v4 streaming to "/audio-stream" (tests/node/audio_stream_check.mjs), in its
default transport mode (long-polling, then the upgrade) and websocket-only; and refused with a bad token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes import FakeDeepgram, run_fake
from tests.live.support import TEXT, register_speech, serve_live, stored
from tests.support.live_audio import silence
from tests.support.node import node, run_check
from tests.support.users import make_user

pytestmark = pytest.mark.node

SCRIPT = "audio_stream_check.mjs"


@pytest.fixture
async def deepgram_fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


async def _run(url: str, token: str, audio: Path, mode: str) -> tuple[int, dict]:
    return await run_check(SCRIPT, url, token, str(audio), mode, within=40)


@pytest.mark.parametrize("mode", ["default", "websocket"])
async def test_the_npm_client_streams_and_gets_the_words(
    mode: str, deepgram_fake: FakeDeepgram, tmp_path: Path
) -> None:
    node()
    audio = tmp_path / "speech.raw"
    audio.write_bytes(register_speech(deepgram_fake) + silence(1.2))  # UtteranceEnd after 1 s of silence
    async with serve_live(tmp_path, deepgram_fake) as (app, port):
        user, key = await make_user(app)
        code, result = await _run(f"http://127.0.0.1:{port}", key, audio, mode)
        assert code == 0 and result["ok"], result
        assert result["connected"]["message"] == "Successfully connected"
        assert result["started"] == {"session_id": result["connected"]["session_id"]}
        finals = [t["text"] for t in result["transcripts"] if t["is_final"]]
        assert " ".join(finals) == TEXT and result["utterance_ends"] == 1
        assert result["stopped"]["text"] == TEXT and result["errors"] == []
        assert result["transport"] == "websocket"
        assert deepgram_fake.live_connection().param("language") == "en"  # from the handshake query
        assert (await stored(app, user.id, result["stopped"]["transcription_id"])).transcript == TEXT

        code, refused = await _run(f"http://127.0.0.1:{port}", "usr_forged_token", audio, mode)
        assert code == 1 and refused["error"] == "Invalid or expired authentication token"
