"""A whole phone call in one event loop: the real app under hypercorn, FakeRealtime, FakeTwilio, and Twilio's
Media Streams played by `TwilioMediaCall` on a manual clock.

    async with phone_env(tmp_path, REALTIME_MAX_SESSION_S="1") as env:
        tenant = await env.tenant(instructions="...", knowledge_enabled=True)
        call = await env.dial(tenant)          # POST /twilio/voice (signed), then the stream from its TwiML
        await env.say(call, 400)               # 400 ms of voice, then silence, tick by tick
        await env.run(call, until=lambda: ...) # ticks of 20 ms, each followed by `settle`

`settle` waits, without any time limit beyond a hang guard, until every party has handled everything the
others sent: the relay got every frame Twilio sent; the provider got every frame the relay delivered; the
relay read every event the provider emitted; Twilio got every message the relay sent. Tests then assert on
order and content, never on durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quart import Quart

from fakes import FakeRealtime, FakeTwilio, TwilioMediaCall, g711, run_fake, sign
from fakes.twilio_media import stream_from_twiml
from quart_app import create_app
from quart_app.calls.feature import RealtimeCalls
from quart_app.calls.session import CallSession
from quart_app.calls.speech import HistoryItem, SpeechConfig, SpeechConnector, SpeechSession
from quart_app.db import tenants
from quart_app.db.tenants import Tenant
from quart_app.settings import Settings
from tests.support.inprocess import served

PUBLIC = "https://voice.example.com"
ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "phone-test-auth-token-0123456789"
CALLER = "+15550001111"
HANG_GUARD_S = 20.0


async def eventually(
    predicate: Callable[[], Any], guard_s: float = HANG_GUARD_S, what: str = "condition", *, every_s: float = 0.002
) -> None:
    """Wait until `predicate()` holds, polled every `every_s`; `guard_s` is only a hang guard."""
    try:
        async with asyncio.timeout(guard_s):
            while not predicate():  # noqa: ASYNC110 - polling state owned by other parties (fakes, the app)
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise AssertionError(f"{what} not reached (hang guard {guard_s} s)") from None


def voice(ms: int, freq: float = 440.0) -> bytes:
    """`ms` of a loud tone as 8 kHz μ-law: the fake's VAD hears it as speech."""
    return g711.ulaw_encode(g711.tone(ms, 8000, freq=freq, amplitude=0.4))


def provider_env(
    realtime: FakeRealtime, twilio: FakeTwilio, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN
) -> dict[str, str]:
    """The settings that point a server, public at PUBLIC, at the fake Realtime and the fake Twilio."""
    return {
        "PUBLIC_BASE_URL": PUBLIC,
        "OPENAI_API_KEY": realtime.api_key,
        "OPENAI_REALTIME_URL": realtime.ws_url,
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_AUTH_TOKEN": auth_token,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "REALTIME_TRANSCRIBE_MODEL": "gpt-4o-mini-transcribe",
    }


def inbound_call(
    twilio: FakeTwilio, number: str, *, caller: str = CALLER, account_sid: str = ACCOUNT_SID
) -> dict[str, str]:
    """An inbound call from `caller` to `number`, in progress at the fake Twilio: the form parameters of the
    /twilio/voice webhook Twilio posts for it."""
    record = twilio._new_call({"From": caller, "To": number})
    record["direction"] = "inbound"
    twilio.calls[record["sid"]] = record
    twilio.instructions[record["sid"]] = []
    twilio.set_call_status(record["sid"], "in-progress")
    return {
        "CallSid": record["sid"],
        "AccountSid": account_sid,
        "From": caller,
        "To": number,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def signed(path: str, params: dict[str, str], auth_token: str = AUTH_TOKEN) -> dict[str, str]:
    """The X-Twilio-Signature header Twilio sends with `params` posted to PUBLIC + `path`."""
    return {"X-Twilio-Signature": sign(PUBLIC + path, params, auth_token)}


def stream_call(
    twiml: str,
    call_sid: str,
    local_url: Callable[[str], str],
    *,
    account_sid: str = ACCOUNT_SID,
    auth_token: str = AUTH_TOKEN,
    **options: Any,
) -> TwilioMediaCall:
    """The Media Stream the webhook's `twiml` connects, reached at `local_url(its public URL)` (not started)."""
    found = stream_from_twiml(twiml)
    assert found is not None, twiml
    url, custom = found
    return TwilioMediaCall(
        local_url(url),
        auth_token=auth_token,
        account_sid=account_sid,
        call_sid=call_sid,
        custom_parameters=custom,
        public_url=url,
        **options,
    )


class GatedConnector:
    """Wraps the real connector; while `hold` is set, `open()` waits for `release()` (a switch in progress)."""

    name = "gated"

    def __init__(self, inner: SpeechConnector) -> None:
        self.inner = inner
        self.hold = False
        self.waiting = asyncio.Event()
        self._gate = asyncio.Event()
        self.opened = 0

    def release(self) -> None:
        self._gate.set()

    async def open(self, config: SpeechConfig, history: Sequence[HistoryItem] = ()) -> SpeechSession:
        if self.hold:
            self.waiting.set()
            await self._gate.wait()
            self._gate.clear()
            self.waiting.clear()
            self.hold = False
        self.opened += 1
        return await self.inner.open(config, history)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class PhoneEnv:
    app: Quart
    port: int
    realtime: FakeRealtime
    twilio: FakeTwilio
    calls: list[TwilioMediaCall] = field(default_factory=list)
    _gate: GatedConnector | None = None

    @property
    def feature(self) -> RealtimeCalls:
        return next(f for f in self.app.extensions["features"] if isinstance(f, RealtimeCalls))

    @property
    def db(self) -> Any:
        return self.app.extensions["resources"].db()

    async def tenant(self, number: str | None = None, **values: Any) -> Tenant:
        number = number or "+1555" + str(secrets.randbelow(10**7)).zfill(7)
        values.setdefault("name", "Acme")
        values.setdefault("instructions", "You answer the phone for Acme.")
        values.setdefault("turn_detection", {"type": "server_vad", "silence_duration_ms": 200})
        return await tenants.create_tenant(self.db, phone_numbers=[number], **values)

    async def voice_webhook(self, params: dict[str, str], *, path: str = "/twilio/voice") -> tuple[int, str]:
        client = self.app.test_client()
        response = await client.post(path, form=params, headers=signed(path, params))
        return response.status_code, (await response.get_data(as_text=True))

    async def dial(
        self, tenant: Tenant, *, caller: str = CALLER, start: bool = True, **options: Any
    ) -> TwilioMediaCall:
        """An inbound call to the tenant's first number, as Twilio places it."""
        params = inbound_call(self.twilio, tenant.phone_numbers[0], caller=caller)
        status, twiml = await self.voice_webhook(params)
        assert status == 200, twiml
        options.setdefault("pace", None)
        port = self.port
        call = stream_call(
            twiml,
            params["CallSid"],
            lambda url: url.replace("wss://voice.example.com", f"ws://127.0.0.1:{port}"),
            **options,
        )
        self.calls.append(call)
        if start:
            await call.start()
            call.follow(self.twilio)
        return call

    def session(self, call: TwilioMediaCall) -> CallSession | None:
        return self.feature.calls.get(call.call_sid)

    # ----- driving the clock ---------------------------------------------------------------------------

    def _quiet(self, call: TwilioMediaCall, session: CallSession | None) -> bool:
        if session is None:
            return not call.connected or not call.frames_sent
        if session.phase in ("connecting", "switching", "new", "ending"):
            # quiet only while a test holds the provider connection on purpose
            held = self._gate is not None and self._gate.waiting.is_set() and self._gate.hold
            return held and session.frames_in == call.frames_sent
        if call.connected and session.frames_in != call.frames_sent:
            return False
        if session.phase == "ended":
            return True
        speech = session.speech
        if speech is not None:
            with self.realtime._lock:
                record = next((r for r in self.realtime._sessions if r.id == speech.session_id), None)
                appended = len(record.audio_in) if record is not None else 0
                emitted = len(record.server_events) if record is not None else 0
            if appended != session.provider_bytes or getattr(speech, "events_received", emitted) != emitted:
                return False
        received = sum(1 for s in call.streams for m in s.received if m.get("event") in ("media", "mark", "clear"))
        return received == session.twilio_messages

    async def settle(self, call: TwilioMediaCall) -> None:
        """Wait until nothing is in flight between Twilio, the relay and the provider (hang guard only)."""
        async with asyncio.timeout(HANG_GUARD_S):
            quiet_rounds = 0
            while quiet_rounds < 3:
                await asyncio.sleep(0.001)
                quiet_rounds = quiet_rounds + 1 if self._quiet(call, self.session(call)) else 0

    async def tick(self, call: TwilioMediaCall, ms: int = 20, *, settle: bool = True) -> None:
        """Advance the call clock `ms` in 20 ms frames; after each, settle (or, with `settle=False`, only wait
        until the relay has received the frame: for when the provider side is deliberately held)."""
        for _ in range(max(1, ms // 20)):
            await call.advance(20)
            if settle:
                await self.settle(call)
            else:
                async with asyncio.timeout(HANG_GUARD_S):
                    while (s := self.session(call)) is not None and s.frames_in < call.frames_sent:  # noqa: ASYNC110
                        await asyncio.sleep(0.001)

    async def run(self, call: TwilioMediaCall, until: Callable[[], bool], max_ms: int = 20_000) -> None:
        """Tick until `until()` holds (checked after each settled tick); fails after `max_ms` of call time."""
        for _ in range(max_ms // 20):
            if until():
                return
            if call.ended or not call.connected:
                break
            await self.tick(call)
        assert until(), f"condition not reached within {max_ms} ms of call time"

    async def say(self, call: TwilioMediaCall, ms: int = 400, *, then_silence_ms: int = 0) -> None:
        """The caller speaks for `ms` (queued, then played by the ticks), optionally followed by silence."""
        await call.play_ulaw(voice(ms), wait=False)
        await self.tick(call, ms + then_silence_ms)

    async def wait_live(self, call: TwilioMediaCall) -> CallSession:
        await self.run(call, lambda: (s := self.session(call)) is not None and s.phase == "live")
        session = self.session(call)
        assert session is not None
        return session

    def gate(self) -> GatedConnector:
        feature = self.feature
        assert feature.connector is not None
        gated = GatedConnector(feature.connector)
        feature.connector = gated
        self._gate = gated
        return gated


def phone_settings(tmp_path: Path, realtime: FakeRealtime, twilio: FakeTwilio, **env: str) -> Settings:
    values = {
        "APP_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/phone.db",
        **provider_env(realtime, twilio),
        **env,
    }
    return Settings.from_env({k: v for k, v in values.items() if v != ""})


@contextlib.asynccontextmanager
async def phone_env(tmp_path: Path, *, realtime: FakeRealtime | None = None, **env: str) -> AsyncIterator[PhoneEnv]:
    async with (
        run_fake(realtime or FakeRealtime(reply_audio_ms=300)) as fake_realtime,
        run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as fake_twilio,
    ):
        app = create_app(phone_settings(tmp_path, fake_realtime, fake_twilio, **env))
        async with served(app) as port:
            phone = PhoneEnv(app, port, fake_realtime, fake_twilio)
            try:
                yield phone
            finally:
                for call in phone.calls:
                    with contextlib.suppress(Exception):
                        await call.hangup()
