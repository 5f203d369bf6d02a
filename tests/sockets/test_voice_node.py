"""The official npm socket.io-client v4 on "/voice" (tests/node/voice_check.mjs), in its default transport mode
(long-polling, then the upgrade to websocket) and websocket-only: status, PIN sign-in, a typed request with its
answer and the list, then a spoken request sent as binary with its transcript and spoken answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes import FakeOpenAI, run_fake
from quart_app import create_app
from quart_app.settings import Settings
from quart_app.sockets.voice import READY
from tests.support.audio import spoken, spoken_path
from tests.support.inprocess import served
from tests.support.node import node, run_check
from tests.support.users import make_user

pytestmark = pytest.mark.node

SCRIPT = "voice_check.mjs"
PIN = "735104"


@pytest.fixture
async def voice_app(tmp_path: Path) -> AsyncIterator[tuple[object, str, FakeOpenAI]]:
    async with run_fake(FakeOpenAI()) as openai:
        settings = Settings.from_env(
            {
                "APP_ENV": "test",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/voice-node.db",
                "OPENAI_API_KEY": openai.api_key,
                "OPENAI_BASE_URL": openai.base_url + "/v1",
            }
        )
        app = create_app(settings)
        async with served(app) as port:
            yield app, f"http://127.0.0.1:{port}", openai


async def _run(*args: str) -> tuple[int, dict]:
    return await run_check(SCRIPT, *args, within=45)


@pytest.mark.parametrize("mode", ["default", "websocket"])
async def test_the_npm_client_signs_in_talks_and_follows_the_list(
    mode: str, voice_app: tuple[object, str, FakeOpenAI]
) -> None:
    node()
    app, base, openai = voice_app
    user, _ = await make_user(app, pin=PIN)  # type: ignore[arg-type]
    wav = spoken_path("add buy milk")
    openai.register_transcript(spoken("add buy milk"), "Add buy milk.")

    code, result = await _run(base, mode, str(user.email), PIN, str(wav))

    assert code == 0 and result["ok"], result
    if mode == "default":
        assert result["initial_transport"] == "polling" and result["upgraded_to"] == "websocket"
    else:
        assert result["initial_transport"] == "websocket" and result["upgraded_to"] is None
    assert result["transport_at_end"] == "websocket"
    assert result["status"] == {"message": READY}
    assert result["authenticated"] == {"user": {"id": user.id, "name": user.email}, "todos": 0, "has_token": True}
    assert "buy milk" in result["text_response"]["text"].lower()
    assert result["text_response"]["mime"] == "audio/mpeg" and result["text_response"]["audio_bytes"] > 100
    assert result["todos"] == ["buy milk"]
    assert result["transcript"] == "Add buy milk."
    assert result["audio_response"]["audio_bytes"] > 100
    assert result["errors"] == [] and result["disconnect_reason"] == "io client disconnect"


async def test_the_checker_fails_loudly_on_a_wrong_pin(voice_app: tuple[object, str, FakeOpenAI]) -> None:
    # Guards the checker itself: a refused sign-in must give exit code 1 and say which step failed.
    node()
    app, base, _ = voice_app
    user, _ = await make_user(app, pin=PIN)  # type: ignore[arg-type]
    code, result = await _run(base, "websocket", str(user.email), "000000", str(spoken_path("add buy milk")))
    assert code == 1 and not result["ok"]
    assert result["status"] == {"message": READY} and result["authenticated"] is None
    assert result["error"] == "auth_error: invalid_credentials E-mail or PIN is incorrect.", result
