"""Bodies, parsing and headers on a live server: small limits off the upload routes, authentication before
any body is parsed, malformed input answered 400 (never 500), and protective headers on every answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import harness
from quart_app import create_app
from quart_app.settings import Settings
from tests.support.live_server import LiveServer

TWILIO_TOKEN = "hardening-twilio-token-0123456789"


@pytest.fixture
def server(live_server_factory: Any, tmp_path: Path) -> tuple[LiveServer, dict[str, str]]:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/hard.db"
    key = harness.create_api_key(db_url)
    live = live_server_factory(
        DATABASE_URL=db_url,
        TWILIO_ACCOUNT_SID="AC" + "5" * 32,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        PUBLIC_BASE_URL="https://voice.example.com",
        LOG_LEVEL="WARNING",
    )
    return live, {"x-api-key": key}


def test_a_huge_unauthenticated_json_body_is_refused_without_buffering_it(
    server: tuple[LiveServer, dict[str, str]],
) -> None:
    live, _ = server
    worker = harness.worker_pid(live.proc.pid)  # type: ignore[union-attr]
    httpx.get(live.url + "/health/live")
    body = b'{"email": "' + b"x" * (30 * harness.MB) + b'", "pin": "1234"}'
    with harness.RssSampler(worker) as rss:
        response = httpx.post(
            live.url + "/api/auth/pin", content=body, headers={"content-type": "application/json"}, timeout=60
        )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "request_entity_too_large"
    # Before: the 30 MB body was buffered and parsed (about +200 MB). Now at most the small JSON limit.
    assert rss.increase < 20 * harness.MB, f"+{harness.mb(rss.increase)} MB"


def test_authentication_runs_before_the_body_is_parsed(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, headers = server
    garbage = b"{not json" + b" " * 100_000
    anonymous = httpx.post(
        live.url + "/translations/openai", content=garbage, headers={"content-type": "application/json"}
    )
    assert anonymous.status_code == 401, anonymous.text  # before: 400, the body was parsed first
    signed_in = httpx.post(
        live.url + "/translations/openai", content=garbage, headers={**headers, "content-type": "application/json"}
    )
    assert signed_in.status_code == 400, signed_in.text


def test_deeply_nested_json_is_a_400_not_a_500(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, headers = server
    bomb = "[" * 100_000 + "]" * 100_000
    for path, extra in (("/api/auth/pin", {}), ("/translations/openai", headers)):
        response = httpx.post(live.url + path, content=bomb, headers={**extra, "content-type": "application/json"})
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
    assert "Traceback" not in live.output()


def test_control_characters_in_search_are_a_400(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, headers = server
    for q in ("milk\x00", "a\x1fb", "\x7f"):
        response = httpx.get(live.url + "/api/transcriptions", params={"q": q}, headers=headers)
        assert response.status_code == 400, (repr(q), response.text)
    assert httpx.get(live.url + "/api/transcriptions", params={"q": "milk"}, headers=headers).status_code == 200


def test_twilio_webhook_forms_have_the_small_limit(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, _ = server
    form = {"CallSid": "CA" + "1" * 32, "CallStatus": "ringing", "Padding": "x" * (2 * harness.MB)}
    response = httpx.post(live.url + "/twilio/status", data=form)
    assert response.status_code == 413, response.text


def test_every_answer_carries_the_protective_headers(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, headers = server
    answers = [
        httpx.get(live.url + "/health/live"),
        httpx.get(live.url + "/api/me", headers=headers),
        httpx.get(live.url + "/api/me"),
        httpx.post(live.url + "/api/keys", json={"name": "second"}, headers=headers),
    ]
    for response in answers:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"  # keys and tokens are never cached
        assert "Strict-Transport-Security" not in response.headers  # not in development/test
    assert answers[-1].status_code == 201 and json.loads(answers[-1].text)["key"].startswith("usr_")


async def test_production_answers_carry_hsts(tmp_path: Path) -> None:
    app = create_app(
        Settings.from_env(
            {
                "APP_ENV": "production",
                "SECRET_KEY": "p" * 48,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.db",
            }
        )
    )
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/health/live")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
