"""The to-do assistant by phone over Twilio's classic webhooks, against the fake OpenAI and Twilio servers.

Every answer is 200 TwiML that parses as XML, whatever fails; a forged signature is 403.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from fakes import FakeOpenAI, FakeTwilio, run_fake, sign, sine_wav
from quart_app import create_app
from quart_app.auth.pins import hash_pin
from quart_app.db import todos, users
from quart_app.settings import Settings
from quart_app.telephony.classic import is_goodbye, spoken_digits

PUBLIC = "https://voice.example.com"
ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "classic-test-auth-token-0123456789"
PIN = "1234"


@dataclass
class Env:
    app: Quart
    openai: FakeOpenAI
    twilio: FakeTwilio

    async def post(self, path: str, params: dict[str, str], *, signature: str | None = None) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": signature or sign(PUBLIC + path, params, AUTH_TOKEN)}
        response = await self.app.test_client().post(path, form=params, headers=headers)
        return response.status_code, await response.get_data(as_text=True)

    async def caller(self, *, pin: str = PIN) -> tuple[users.User, str]:
        number = "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))
        db = self.app.extensions["resources"].db()
        return await users.create_user(db, email=None, phone=number, pin_hash=hash_pin(pin)), number


@asynccontextmanager
async def classic_env(tmp_path: Path, **env: str) -> AsyncIterator[Env]:
    async with (
        run_fake(FakeOpenAI(speech_engine="tone")) as openai_fake,
        run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as twilio_fake,
    ):
        values = {
            "APP_ENV": "test",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/classic.db",
            "PUBLIC_BASE_URL": PUBLIC,
            "OPENAI_API_KEY": openai_fake.api_key,
            "OPENAI_BASE_URL": openai_fake.base_url + "/v1",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": twilio_fake.base_url,
            "PIN_SIGNIN_ADDRESS_PER_MINUTE": "100000",
            "PIN_SIGNIN_ACCOUNT_PER_MINUTE": "100000",
            **env,
        }
        app = create_app(Settings.from_env(values))
        async with app.test_app():
            assert await app.extensions["resources"].database.wait_ready(20)
            yield Env(app, openai_fake, twilio_fake)


def _call(number: str, call_sid: str, **extra: str) -> dict[str, str]:
    return {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": number, "To": "+15559990000", **extra}


def _sid() -> str:
    return "CA" + secrets.token_hex(16)


def _verbs(document: str) -> tuple[list[str], list[str], ET.Element]:
    """(top-level verbs, every <Say> text in order, root)."""
    root = ET.fromstring(document)
    assert root.tag == "Response"
    return [c.tag for c in root], [s.text or "" for s in root.iter("Say")], root


def _gather(root: ET.Element) -> dict[str, Any]:
    gather = root.find("Gather")
    assert gather is not None
    return dict(gather.attrib)


def test_spoken_pins_and_goodbyes() -> None:
    assert spoken_digits("one two three four") == "1234"
    assert spoken_digits("1 2 3 4.") == "1234"
    assert spoken_digits("My PIN is 12-34") == "1234"
    assert spoken_digits("oh four for too") == "0442"
    assert spoken_digits("hello") == ""
    assert is_goodbye("Goodbye.") and is_goodbye("ok bye") and is_goodbye("that's all, thanks")
    assert not is_goodbye("add buy milk") and not is_goodbye("say goodbye to mom")


async def test_full_round_trip_add_buy_milk(tmp_path: Path) -> None:
    async with classic_env(tmp_path) as env:
        user, number = await env.caller()
        sid = _sid()
        status, document = await env.post("/twilio/call", _call(number, sid))
        assert status == 200
        verbs, said, root = _verbs(document)
        assert verbs == ["Say", "Gather", "Say", "Hangup"]
        gather = _gather(root)
        assert gather["input"] == "dtmf speech"
        assert gather["action"] == f"{PUBLIC}/twilio/process_audio" and gather["method"] == "POST"
        assert "PIN" in said[1]

        status, document = await env.post(
            "/twilio/process_audio", _call(number, sid, SpeechResult="One, two, three, four.")
        )
        verbs, said, root = _verbs(document)
        assert status == 200 and verbs == ["Gather", "Say", "Hangup"] and "signed in" in said[0]
        assert _gather(root)["input"] == "speech"

        status, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="Add buy milk."))
        verbs, said, _ = _verbs(document)
        assert status == 200 and verbs == ["Say", "Gather", "Say", "Hangup"]
        assert said[0] == "Added buy milk to your list."
        db = env.app.extensions["resources"].db()
        assert [t.title for t in await todos.list_todos(db, user.id)] == ["buy milk"]

        _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="What's on my list?"))
        assert _verbs(document)[1][0] == "You have 1 item: buy milk."

        _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="Goodbye."))
        verbs, said, _ = _verbs(document)
        assert verbs == ["Say", "Hangup"] and said == ["Goodbye!"]
        # The call is over: the same CallSid starts from the PIN again.
        _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="add eggs"))
        assert "PIN" in " ".join(_verbs(document)[1])
        assert [t.title for t in await todos.list_todos(db, user.id)] == ["buy milk"]


async def test_digits_and_a_recording(tmp_path: Path) -> None:
    async with classic_env(tmp_path) as env:
        user, number = await env.caller(pin="9876")
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits="9876"))
        assert "signed in" in _verbs(document)[1][0]

        recording = sine_wav(0.6)
        env.openai.register_transcript(recording, "remind me to call mom tomorrow")
        _, url = env.twilio.add_recording(recording, call_sid=sid)
        _, document = await env.post("/twilio/process_audio", _call(number, sid, RecordingUrl=url))
        assert _verbs(document)[1][0] == "Added call mom to your list (due tomorrow)."
        fetched = env.twilio.requests_to(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/")
        assert fetched and fetched[-1].status == 200  # with the account's basic auth
        db = env.app.extensions["resources"].db()
        stored = await todos.list_todos(db, user.id)
        assert [(t.title, t.due_date) for t in stored] == [("call mom", "tomorrow")]

        # A recording URL on another host is never fetched: only its path, on TWILIO_API_BASE_URL.
        _, document = await env.post(
            "/twilio/process_audio", _call(number, sid, RecordingUrl="http://169.254.169.254/latest/meta-data")
        )
        verbs, said, _ = _verbs(document)
        assert verbs == ["Say", "Gather", "Say", "Hangup"] and "recording" in said[0]


async def test_forged_signature_is_refused(tmp_path: Path) -> None:
    async with classic_env(tmp_path) as env:
        _, number = await env.caller()
        for path in ("/twilio/call", "/twilio/process_audio"):
            status, _ = await env.post(path, _call(number, _sid(), Digits=PIN), signature="bm9wZQ==")
            assert status == 403
        # Signed for another URL (another path) is forged too.
        params = _call(number, _sid(), Digits=PIN)
        status, _ = await env.post(
            "/twilio/process_audio", params, signature=sign(PUBLIC + "/twilio/call", params, AUTH_TOKEN)
        )
        assert status == 403


async def test_wrong_pins_end_the_call_and_unknown_numbers_look_the_same(tmp_path: Path) -> None:
    async with classic_env(tmp_path, PIN_MAX_ATTEMPTS="10") as env:
        user, number = await env.caller()
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        for _attempt in range(2):
            _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits="0000"))
            verbs, said, _ = _verbs(document)
            assert verbs == ["Say", "Gather", "Say", "Hangup"] and said[0].startswith("Sorry, that PIN is not right")
        _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits="0000"))
        verbs, said, _ = _verbs(document)
        assert verbs == ["Say", "Hangup"] and "Goodbye" in said[0]

        unknown, unknown_sid = "+15550000001", _sid()
        await env.post("/twilio/call", _call(unknown, unknown_sid))
        _, document = await env.post("/twilio/process_audio", _call(unknown, unknown_sid, Digits=PIN))
        assert _verbs(document)[1][0].startswith("Sorry, that PIN is not right")
        # Nothing was added for anyone.
        _, document = await env.post("/twilio/process_audio", _call(unknown, unknown_sid, SpeechResult="add x"))
        db = env.app.extensions["resources"].db()
        assert await todos.list_todos(db, user.id) == []


async def test_lockout_applies_across_calls(tmp_path: Path) -> None:
    async with classic_env(tmp_path, PIN_MAX_ATTEMPTS="2", PIN_LOCKOUT_SECONDS="900") as env:
        _, number = await env.caller()
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits="1111"))
        assert _verbs(document)[0] == ["Say", "Gather", "Say", "Hangup"]
        _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits="2222"))
        verbs, said, _ = _verbs(document)
        assert verbs == ["Say", "Hangup"] and said[0].startswith("Too many wrong PINs")
        # A new call with the right PIN is still locked out.
        again = _sid()
        await env.post("/twilio/call", _call(number, again))
        _, document = await env.post("/twilio/process_audio", _call(number, again, SpeechResult="one two three four"))
        verbs, said, _ = _verbs(document)
        assert verbs == ["Say", "Hangup"] and said[0].startswith("Too many wrong PINs")


@pytest.mark.parametrize("failure", ["http_500", "dead_port"])
async def test_provider_failures_apologise_in_valid_twiml(tmp_path: Path, failure: str) -> None:
    env_vars: dict[str, str] = {}
    if failure == "dead_port":
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env_vars["ASSISTANT_LLM_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    async with classic_env(tmp_path, **env_vars) as env:
        user, number = await env.caller()
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        await env.post("/twilio/process_audio", _call(number, sid, Digits=PIN))
        if failure == "http_500":
            env.openai.fail_next(500, count=2, path="/v1/chat/completions")  # the SDK retries once
        status, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="add buy milk"))
        verbs, said, _ = _verbs(document)
        assert status == 200 and verbs == ["Say", "Gather", "Say", "Hangup"]
        assert said[0].startswith("Sorry")
        # The call goes on: the next request works once the provider is back.
        if failure == "http_500":
            _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="add buy milk"))
            assert _verbs(document)[1][0] == "Added buy milk to your list."

        # A failing recording fetch is an apology too, never a 500.
        env.twilio.fail_next(500, path="/2010-04-01")
        _, url = env.twilio.add_recording(sine_wav(0.3), call_sid=sid)
        status, document = await env.post("/twilio/process_audio", _call(number, sid, RecordingUrl=url))
        assert status == 200 and "recording" in _verbs(document)[1][0]


async def test_database_outage_apologises(tmp_path: Path) -> None:
    async with classic_env(tmp_path) as env:
        _, number = await env.caller()
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        await env.app.extensions["resources"].database.database.disconnect()
        status, document = await env.post("/twilio/process_audio", _call(number, sid, Digits=PIN))
        verbs, said, _ = _verbs(document)
        assert status == 200 and verbs == ["Say", "Hangup"] and said[0].startswith("Sorry")


async def test_routes_under_the_prefix_keep_it_in_their_actions(tmp_path: Path) -> None:
    async with classic_env(tmp_path, APP_ROUTE_PREFIX="/sambanova_todo") as env:
        user, number = await env.caller()
        sid = _sid()
        status, document = await env.post("/sambanova_todo/twilio/call", _call(number, sid))
        assert status == 200
        assert _gather(_verbs(document)[2])["action"] == f"{PUBLIC}/sambanova_todo/twilio/process_audio"
        _, document = await env.post("/sambanova_todo/twilio/process_audio", _call(number, sid, Digits=PIN))
        assert _gather(_verbs(document)[2])["action"] == f"{PUBLIC}/sambanova_todo/twilio/process_audio"
        # Unprefixed routes still answer, with unprefixed actions.
        _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="add milk"))
        assert _gather(_verbs(document)[2])["action"] == f"{PUBLIC}/twilio/process_audio"


async def test_call_state_lives_in_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    async with classic_env(tmp_path, REDIS_URL=redis_url) as env:
        user, number = await env.caller()
        sid = _sid()
        await env.post("/twilio/call", _call(number, sid))
        redis = env.app.extensions["resources"].redis
        assert await redis.ttl(f"twilio-classic:{sid}") > 0
        _, document = await env.post("/twilio/process_audio", _call(number, sid, Digits=PIN))
        assert "signed in" in _verbs(document)[1][0]
        _, document = await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="add buy milk"))
        assert _verbs(document)[1][0] == "Added buy milk to your list."
        await env.post("/twilio/process_audio", _call(number, sid, SpeechResult="bye"))
        assert await redis.exists(f"twilio-classic:{sid}") == 0
