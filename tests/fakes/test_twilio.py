"""FakeTwilio through twilio-python (REST client and RequestValidator)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from fakes import FakeServerThread, FakeService, FakeTwilio, run_fake, sign

URL = "https://voice.example.com/twilio/voice?tenant=1"
PARAMS = {"CallSid": "CA123", "From": "+15551230000", "To": "+15559870000", "CallStatus": "ringing"}


def test_sign_matches_twilio_validator():
    validator = RequestValidator("token-123")
    signature = sign(URL, PARAMS, "token-123")
    assert signature == validator.compute_signature(URL, PARAMS)
    assert validator.validate(URL, PARAMS, signature)
    assert not validator.validate(URL, {**PARAMS, "CallStatus": "completed"}, signature)
    assert not validator.validate(URL, PARAMS, sign(URL, PARAMS, "other-token"))


def test_sign_sorts_names_and_repeated_values_like_twilio():
    params = [("b", "2"), ("a", "z"), ("a", "y")]
    assert sign("https://x/", params, "t") == sign("https://x/", {"a": ["y", "z"], "b": "2"}, "t")
    multi = MultiDict(params)  # how twilio's validator receives repeated form fields
    assert sign("https://x/", params, "t") == RequestValidator("t").compute_signature("https://x/", multi)
    assert sign("https://x/", params, "t", algorithm="sha256") == RequestValidator("t").compute_signature(
        "https://x/", multi, algorithm="HMAC_SHA256"
    )


@pytest.fixture(scope="module")
def threaded_twilio() -> Iterator[FakeTwilio]:
    """twilio.rest.Client is synchronous, so its fake runs in a thread of its own."""
    with FakeServerThread(FakeTwilio()) as fake:
        yield fake  # type: ignore[misc]


def rest_client(fake: FakeTwilio, token: str | None = None) -> Client:
    client = Client(fake.account_sid, token or fake.auth_token)
    client.api.base_url = fake.base_url  # the only change needed; see fakes/README.md
    return client


def test_rest_client_creates_fetches_updates_and_lists_calls(threaded_twilio):
    client = rest_client(threaded_twilio)
    call = client.calls.create(
        to="+15559870000",
        from_="+15551230000",
        url="https://voice.example.com/twiml",
        status_callback="https://voice.example.com/status",
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34 and call.status == "queued"
    assert call.to_formatted == "(555) 987-0000" and call.date_created is not None
    created = threaded_twilio.requests_to("/2010-04-01", "POST")[-1]
    assert created.fields["StatusCallback"] == ["https://voice.example.com/status"]
    assert created.header("Authorization").startswith("Basic ")

    threaded_twilio.set_call_status(call.sid, "in-progress")
    redirected = client.calls(call.sid).update(twiml="<Response><Say>Bye</Say><Hangup/></Response>")
    assert redirected.status == "in-progress"
    assert threaded_twilio.instructions[call.sid][-1] == {"Twiml": "<Response><Say>Bye</Say><Hangup/></Response>"}
    ended = client.calls(call.sid).update(status="completed")
    assert ended.status == "completed" and ended.end_time is not None and ended.duration is not None
    assert client.calls(call.sid).fetch().status == "completed"
    assert call.sid in [c.sid for c in client.calls.list(status="completed", limit=20)]

    with pytest.raises(TwilioRestException) as caught:
        client.calls(call.sid).update(url="https://voice.example.com/next")
    assert caught.value.code == 21220 and caught.value.status == 400


def test_rest_client_errors(threaded_twilio):
    with pytest.raises(TwilioRestException) as missing:
        rest_client(threaded_twilio).calls("CA" + "f" * 32).fetch()
    assert missing.value.status == 404 and missing.value.code == 20404
    assert "was not found" in missing.value.msg
    with pytest.raises(TwilioRestException) as unauthenticated:
        rest_client(threaded_twilio, token="wrong").calls("CA" + "0" * 32).fetch()
    assert unauthenticated.value.status == 401 and unauthenticated.value.code == 20003
    with pytest.raises(TwilioRestException) as invalid:
        rest_client(threaded_twilio).calls.create(to="+15559870000", from_="+15551230000")
    assert invalid.value.code == 21205
    threaded_twilio.fail_next(503)
    with pytest.raises(TwilioRestException) as unavailable:
        rest_client(threaded_twilio).calls("CA" + "0" * 32).fetch()
    assert unavailable.value.status == 503 and unavailable.value.code == 20503


async def test_error_body_is_twilio_shaped(twilio_fake):
    path = f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Calls/CAx.json"
    async with httpx.AsyncClient(auth=(twilio_fake.account_sid, twilio_fake.auth_token)) as http:
        response = await http.get(twilio_fake.base_url + path)
    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


class _WebhookReceiver(FakeService):
    """Stands in for the service: validates X-Twilio-Signature with twilio's own validator."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.validator = RequestValidator(token)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post("/twilio/status", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        valid = self.validator.validate(str(request.url), form, request.headers.get("X-Twilio-Signature", ""))
        return web.Response(status=204 if valid else 403)


async def test_post_webhook_is_signed(twilio_fake):
    async with run_fake(_WebhookReceiver(twilio_fake.auth_token)) as receiver:
        status, _ = await twilio_fake.post_webhook(receiver.base_url + "/twilio/status", PARAMS)
    assert status == 204
    async with run_fake(_WebhookReceiver("another-token")) as receiver:
        status, _ = await twilio_fake.post_webhook(receiver.base_url + "/twilio/status", PARAMS)
    assert status == 403
