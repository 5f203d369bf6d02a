"""`POST /twilio/voice` routes a call to its tenant's agent; `/twilio/media-stream` checks the upgrade's signature.

Every refusal is TwiML a caller can hear (`<Say>` then `<Hangup>`), never an HTTP error.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path

from websockets.exceptions import ConnectionClosed

from fakes import FakeRealtime, FakeTwilio, TwilioMediaCall, run_fake
from quart_app import create_app
from quart_app.db import calls
from tests.calls.harness import ACCOUNT_SID, AUTH_TOKEN, PUBLIC, PhoneEnv, eventually, phone_env, phone_settings
from tests.support.inprocess import served

CALL_SID = "CA" + "5" * 32


def _params(to: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID,
        "AccountSid": ACCOUNT_SID,
        "From": "+15550001111",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def _says_and_hangs_up(twiml: str) -> str:
    root = ET.fromstring(twiml)
    assert [child.tag for child in root] == ["Say", "Hangup"], twiml
    return root[0].text or ""


async def test_known_number_connects_the_stream_with_parameters(tmp_path: Path) -> None:
    async with phone_env(tmp_path) as env:
        tenant = await env.tenant(number="+15557654321")
        status, twiml = await env.voice_webhook(_params("+1 (555) 765-4321"))
        assert status == 200
        root = ET.fromstring(twiml)
        # if the stream drops: a pause (time for another instance to recover the call, #22), then an apology
        assert [child.tag for child in root] == ["Connect", "Pause", "Say", "Hangup"]
        stream = root.find("Connect/Stream")
        assert stream is not None
        assert stream.get("url") == "wss://voice.example.com/twilio/media-stream"  # no query string: Twilio drops it
        parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        assert parameters == {
            "tenant": tenant.id,
            "caller": "+15550001111",
            "called": "+15557654321",
            "call_sid": CALL_SID,
        }
        stored = await calls.get_call(env.db, CALL_SID)
        assert stored is not None and stored.tenant_id == tenant.id and stored.to_number == "+15557654321"
        # Twilio's status callbacks still update the row the router made
        headers_status, _ = await env.voice_webhook(
            _params("+15557654321", CallStatus="completed", SequenceNumber="3", CallDuration="42"),
            path="/twilio/status",
        )
        assert headers_status == 204
        stored = await calls.get_call(env.db, CALL_SID)
        assert stored is not None and stored.status == "completed" and stored.duration_s == 42
        assert stored.tenant_id == tenant.id


async def test_unknown_number_gets_a_polite_goodbye(tmp_path: Path) -> None:
    async with phone_env(tmp_path) as env:
        status, twiml = await env.voice_webhook(_params("+15550009999"))
        assert status == 200
        assert "not in service" in _says_and_hangs_up(twiml)


async def test_forged_signature_is_refused(tmp_path: Path) -> None:
    async with phone_env(tmp_path) as env:
        await env.tenant(number="+15557654321")
        client = env.app.test_client()
        response = await client.post(
            "/twilio/voice", form=_params("+15557654321"), headers={"X-Twilio-Signature": "bm9wZQ=="}
        )
        assert response.status_code == 403


async def test_without_an_openai_key_callers_hear_an_apology(tmp_path: Path) -> None:
    async with run_fake(FakeRealtime()) as realtime, run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as twilio:
        settings = phone_settings(tmp_path, realtime, twilio, OPENAI_API_KEY="")
        app = create_app(settings)
        async with served(app):
            env = PhoneEnv(app, 0, realtime, twilio)
            await env.tenant(number="+15557654321")
            status, twiml = await env.voice_webhook(_params("+15557654321"))
        assert status == 200
        assert "not available" in _says_and_hangs_up(twiml)


async def test_stream_url_setting_and_route_prefix(tmp_path: Path) -> None:
    async with phone_env(tmp_path, APP_ROUTE_PREFIX="/agent") as env:
        await env.tenant(number="+15557654321")
        status, twiml = await env.voice_webhook(_params("+15557654321"), path="/agent/twilio/voice")
        assert status == 200
        stream = ET.fromstring(twiml).find("Connect/Stream")
        assert stream is not None and stream.get("url") == "wss://voice.example.com/agent/twilio/media-stream"
    async with phone_env(tmp_path / "b", TWILIO_STREAM_URL="wss://media.example.com/stream") as env:
        await env.tenant(number="+15557654321")
        _, twiml = await env.voice_webhook(_params("+15557654321"))
        stream = ET.fromstring(twiml).find("Connect/Stream")
        assert stream is not None and stream.get("url") == "wss://media.example.com/stream"


async def test_unsigned_stream_is_closed_with_1008(tmp_path: Path) -> None:
    async with phone_env(tmp_path) as env:
        tenant = await env.tenant()
        call = await env.dial(tenant, start=False, sign_requests=False)
        with contextlib.suppress(ConnectionClosed):  # closed before Twilio's `start` could even be sent
            await call.start()
        closed = await call.wait_closed()
        assert closed.close_code == 1008 and closed.closed_by == "service"
        assert env.realtime.sessions == []
        forged = await env.dial(
            tenant, start=False, extra_headers={"X-Twilio-Signature": "Zm9yZ2Vk"}, sign_requests=False
        )
        with contextlib.suppress(ConnectionClosed):
            await forged.start()
        assert (await forged.wait_closed()).close_code == 1008


async def test_media_stream_is_exempt_from_cors(tmp_path: Path) -> None:
    """Twilio sends no Origin header; with CORS_ORIGINS set, quart-cors would refuse the upgrade with 400."""
    async with phone_env(tmp_path, CORS_ORIGINS="https://app.example.com") as env:
        tenant = await env.tenant(turn_detection={"type": "server_vad", "silence_duration_ms": 200})
        call = await env.dial(tenant)
        session = await env.wait_live(call)
        assert session.phase == "live" and call.connected
        await call.hangup()
        await eventually(session.ended.is_set)


async def test_stream_for_an_unknown_tenant_or_call_is_closed(tmp_path: Path) -> None:
    """The upgrade's signature is the same for every call (it covers the URL only), so a stream must also belong
    to a call the signed router connected to that tenant."""
    async with phone_env(tmp_path) as env:
        tenant = await env.tenant()
        for parameters in ({"tenant": "tnt_nope"}, {"tenant": tenant.id}):
            call = TwilioMediaCall(
                f"ws://127.0.0.1:{env.port}/twilio/media-stream",
                auth_token=AUTH_TOKEN,
                public_url=PUBLIC.replace("https", "wss") + "/twilio/media-stream",
                custom_parameters=parameters,
                pace=None,
            )
            env.calls.append(call)
            await call.start()
            closed = await call.wait_closed()
            assert closed.close_code == 1008
        assert env.realtime.sessions == []
