"""No cookie session (quart_app/web/no_session.py): no answer sets a cookie or varies on one, and a write to
`quart.session` fails loudly instead of being dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import session

from quart_app import create_app
from quart_app.settings import Settings
from quart_app.web.no_session import NoCookieSession, NoSession
from tests.support.inprocess import served
from tests.support.users import make_user

COOKIE = {"Cookie": "session=eyJ1c2VyIjoiYWRtaW4ifQ.forged.signature"}


def assert_no_session_cookie(response: Any) -> None:
    headers = response.headers
    assert "set-cookie" not in {k.lower() for k in headers.keys()}, dict(headers)
    vary = ",".join(v for k, v in headers.items() if k.lower() == "vary")
    assert "cookie" not in vary.lower(), vary


async def test_no_answer_sets_or_varies_on_a_cookie(make_app: Any) -> None:
    async with make_app() as (app, client):
        assert isinstance(app.session_interface, NoSession)
        _, key = await make_user(app)
        answers = [
            await client.get("/health/live", headers=COOKIE),
            await client.get("/", headers=COOKIE),
            await client.get("/health", headers=COOKIE),
            await client.get("/api/me", headers=COOKIE),  # 401
            await client.get("/api/me", headers={**COOKIE, "x-api-key": key}),
            await client.post("/api/keys", json={"name": "k2"}, headers={**COOKIE, "x-api-key": key}),
            await client.get("/no/such/route", headers=COOKIE),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 401, 200, 201, 404]
        for response in answers:
            assert_no_session_cookie(response)


async def test_a_live_server_sets_no_cookie_either(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/n.db"}))
    async with served(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for path in ("/health/live", "/", "/health", "/api/me", "/docs"):
            assert_no_session_cookie(await http.get(path, headers=COOKIE))
        assert not http.cookies


async def test_the_session_is_empty_and_read_only(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/r.db"}))
    async with app.test_request_context("/", headers=COOKIE):
        assert isinstance(session._get_current_object(), NoCookieSession)  # type: ignore[attr-defined]
        assert dict(session) == {} and session.get("user") is None  # the forged cookie was never read
        with pytest.raises(RuntimeError, match="no cookie session"):
            session["user_id"] = "u1"
        with pytest.raises(RuntimeError, match="no cookie session"):
            session.update(user_id="u1")
