"""Live-stream (Deepgram live) and Realtime (OpenAI) connects reach the dashboard's provider status.

The app injects the monitoring's recorder into both features (app.py's factories); a refused Deepgram live
connect and an unreachable Realtime endpoint must show in `GET /api/monitoring/snapshot`'s `provider_status`
with their error, and a session that opens is counted without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import FakeDeepgram, run_fake
from quart_app.calls.feature import speech_config
from quart_app.calls.speech import HistoryItem, MeasuredConnector, SpeechConfig, SpeechUnavailable
from quart_app.monitoring.providers import ProviderCalls
from tests.live.support import connect_websocket, serve_live
from tests.monitoring.clients import demo_tenant, realtime_calls
from tests.support.live_server import free_port
from tests.support.users import make_user


async def _provider_status(port: int, admin: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.get("/api/monitoring/snapshot", headers={"x-api-key": admin})
    assert response.status_code == 200, response.text
    return response.json()["provider_status"]


async def test_a_refused_deepgram_live_connect_shows_in_provider_status(tmp_path: Path) -> None:
    async with run_fake(FakeDeepgram()) as deepgram:
        # The fake's real endpoint, the wrong key: Deepgram refuses the upgrade.
        env = {"DEEPGRAM_API_KEY": "not-the-fakes-key", "DEEPGRAM_BASE_URL": deepgram.base_url}
        async with serve_live(tmp_path, None, **env) as (app, port):
            _, key = await make_user(app)
            _, admin = await make_user(app, role="admin")
            assert (await _provider_status(port, admin))["deepgram"]["errors_total"] == 0
            client = await connect_websocket(port, key)
            try:
                await client.wait_for("connected")
                answer, error = await client.start_and_wait(encoding="linear16", sample_rate=16000)
            finally:
                await client.close()
            assert answer == "error" and error["code"] == "upstream_error", error
            status = (await _provider_status(port, admin))["deepgram"]
    assert status["configured"] is True
    assert status["errors_total"] == 1 and status["errors"] == 1 and status["error_rate"] == 1.0
    assert status["last_error"].startswith("live: ") and status["last_error_at"]


async def test_an_unreachable_realtime_endpoint_shows_in_provider_status(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: the connect is refused
    env = {
        "OPENAI_API_KEY": "sk-test-never-answered",
        "OPENAI_REALTIME_URL": f"ws://127.0.0.1:{closed}/v1/realtime",
        "REALTIME_CONNECT_TIMEOUT_S": "5",
    }
    async with serve_live(tmp_path, None, **env) as (app, port):
        _, admin = await make_user(app, role="admin")
        calls = realtime_calls(app)
        assert calls.connector is not None
        config = speech_config(app.extensions["resources"].settings, demo_tenant())
        with pytest.raises(SpeechUnavailable):
            await calls.connector.open(config)  # what a call's first session (or a recovery) does
        status = (await _provider_status(port, admin))["openai"]
    assert status["configured"] is True
    assert status["errors_total"] == 1 and status["error_rate"] == 1.0
    assert status["last_error"].startswith("realtime: ")


class _Session:
    session_id = "sess_1"


class _Connector:
    name = "openai"

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.closed = False

    async def open(self, config: SpeechConfig, history: Sequence[HistoryItem] = ()) -> Any:
        if self.fail:
            raise SpeechUnavailable("the Realtime API refused the session (401)")
        return _Session()

    async def close(self) -> None:
        self.closed = True


async def test_measured_connector_counts_opens_and_failures() -> None:
    calls = ProviderCalls({"openai": True})
    config = speech_config_for_units()
    opened = await MeasuredConnector(_Connector(fail=False), calls.record).open(config)
    assert opened.session_id == "sess_1"
    failing = MeasuredConnector(_Connector(fail=True), calls.record)
    with pytest.raises(SpeechUnavailable):
        await failing.open(config)
    await failing.close()
    assert failing.inner.closed  # type: ignore[attr-defined]
    status = calls.status()["openai"]
    assert (status["requests"], status["errors"], status["error_rate"]) == (2, 1, 0.5)
    assert status["last_error"] == "realtime: the Realtime API refused the session (401)"


def speech_config_for_units() -> SpeechConfig:
    return SpeechConfig(
        model="gpt-realtime",
        instructions="Be brief.",
        voice="alloy",
        audio_format="pcmu",
        turn_detection={"type": "server_vad"},
        transcription_model=None,
    )
