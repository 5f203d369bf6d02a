"""X-Twilio-Signature on webhooks: signed over the public https URL, SHA1 or SHA256, forged ones refused."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from quart_app.db import calls

TOKEN = "twilio-test-auth-token-0123456789"
PUBLIC = "https://voice.example.com"
CALL_SID = "CA" + "0" * 31 + "1"


def _params(status: str = "ringing", sequence: int = 0, **extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID,
        "AccountSid": "AC" + "1" * 32,
        "From": "+15550001111",
        "To": "+15550002222",
        "Direction": "inbound",
        "CallStatus": status,
        "SequenceNumber": str(sequence),
        **extra,
    }


def _sign(url: str, params: dict[str, str], algorithm: str | None = None) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params, algorithm)


async def test_valid_signature_records_call_and_forgeries_change_nothing(make_app, backend_env) -> None:
    env = {**backend_env, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}
    async with make_app(**env) as (app, client):
        db = app.extensions["resources"].db()
        forged = await client.post(
            "/twilio/status", form=_params(), headers={"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"}
        )
        assert forged.status_code == 403
        assert (await forged.get_json())["error"] == "invalid_signature"
        http_signed = await client.post(
            "/twilio/status",
            form=_params(),
            headers={"X-Twilio-Signature": _sign("http://voice.example.com/twilio/status", _params())},
        )
        assert http_signed.status_code == 403
        missing = await client.post("/twilio/status", form=_params())
        assert missing.status_code == 403
        tampered_params = _params()
        signature = _sign(PUBLIC + "/twilio/status", tampered_params)
        tampered = await client.post(
            "/twilio/status",
            form={**tampered_params, "CallStatus": "completed"},
            headers={"X-Twilio-Signature": signature},
        )
        assert tampered.status_code == 403
        assert await calls.get_call(db, CALL_SID) is None

        ok = await client.post(
            "/twilio/status",
            form=_params(),
            headers={"X-Twilio-Signature": _sign(PUBLIC + "/twilio/status", _params())},
        )
        assert ok.status_code == 204
        call = await calls.get_call(db, CALL_SID)
        assert call is not None and call.status == "ringing" and call.from_number == "+15550001111"


async def test_sha256_signatures_when_twilio_asks_for_them(make_app) -> None:
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}
    async with make_app(**env) as (app, client):
        params = _params()
        headers = {
            "X-Twilio-Signature": _sign(PUBLIC + "/twilio/status", params, "HMAC_SHA256"),
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_x,algorithm=HMAC_SHA256",
        }
        assert (await client.post("/twilio/status", form=params, headers=headers)).status_code == 204
        # The same SHA256 signature without the header asking for SHA256 is checked as SHA1 and fails.
        del headers["X-Twilio-Webhooks-Signature-Settings"]
        assert (await client.post("/twilio/status", form=params, headers=headers)).status_code == 403


async def test_forwarded_headers_rebuild_public_url_without_public_base_url(make_app) -> None:
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN}
    async with make_app(**env) as (app, client):
        params = _params()
        signature = _sign("https://public.example.org/twilio/status?tenant=t1", params)
        headers = {
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "public.example.org",
        }
        response = await client.post("/twilio/status?tenant=t1", form=params, headers=headers)
        assert response.status_code == 204
        del headers["X-Forwarded-Proto"]  # now the app would rebuild http://..., which Twilio did not sign
        assert (await client.post("/twilio/status?tenant=t1", form=params, headers=headers)).status_code == 403


async def test_out_of_order_callbacks_keep_the_latest_state(make_app) -> None:
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}
    async with make_app(**env) as (app, client):
        for status, sequence, extra in (("completed", 3, {"CallDuration": "42"}), ("ringing", 1, {})):
            params = _params(status, sequence, **extra)
            headers = {"X-Twilio-Signature": _sign(PUBLIC + "/twilio/status", params)}
            assert (await client.post("/twilio/status", form=params, headers=headers)).status_code == 204
        call = await calls.get_call(app.extensions["resources"].db(), CALL_SID)
        assert call is not None and call.status == "completed" and call.duration_s == 42


async def test_route_prefix_keeps_old_urls_working(make_app) -> None:
    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": PUBLIC,
        "APP_ROUTE_PREFIX": "/sambanova_todo",
    }
    async with make_app(**env) as (app, client):
        params = _params()
        headers = {"X-Twilio-Signature": _sign(PUBLIC + "/sambanova_todo/twilio/status", params)}
        assert (await client.post("/sambanova_todo/twilio/status", form=params, headers=headers)).status_code == 204


async def test_unconfigured_twilio_is_503_and_bad_fields_are_400(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.post("/twilio/status", form=_params(), headers={"X-Twilio-Signature": "x"})
        assert response.status_code == 503
        assert "TWILIO_AUTH_TOKEN" in (await response.get_json())["message"]
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}
    async with make_app(**env) as (app, client):
        params = _params(status="exploded")
        headers = {"X-Twilio-Signature": _sign(PUBLIC + "/twilio/status", params)}
        assert (await client.post("/twilio/status", form=params, headers=headers)).status_code == 400


async def test_validation_can_be_switched_off_only_in_development(make_app, caplog) -> None:
    env = {"APP_ENV": "development", "TWILIO_VALIDATE_SIGNATURES": "false"}
    async with make_app(**env) as (app, client):
        assert (await client.post("/twilio/status", form=_params())).status_code == 204
    assert any("validation is OFF" in r.getMessage() for r in caplog.records)


async def test_recent_calls_are_admin_only(make_app, backend_env) -> None:
    from tests.support.users import make_user

    env = {**backend_env, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC}
    async with make_app(**env) as (app, client):
        params = _params("in-progress", 2)
        headers = {"X-Twilio-Signature": _sign(PUBLIC + "/twilio/status", params)}
        assert (await client.post("/twilio/status", form=params, headers=headers)).status_code == 204
        _, user_key = await make_user(app)
        _, admin_key = await make_user(app, role="admin")
        forbidden = await client.get("/api/calls", headers={"x-api-key": user_key})
        assert forbidden.status_code == 403 and (await forbidden.get_json())["error"] == "forbidden"
        listed = await client.get("/api/calls", headers={"x-api-key": admin_key})
        assert listed.status_code == 200
        items = (await listed.get_json())["items"]
        assert [c["call_sid"] for c in items] == [CALL_SID] and items[0]["status"] == "in-progress"
        assert (await client.get("/api/calls")).status_code == 401
