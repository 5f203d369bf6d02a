"""Plain WebSocket upgrades: the same Authenticator as REST, refused with HTTP 401 before the upgrade;
and the drain closes open plain WebSockets with 1001 after marking the instance not ready."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from quart import Quart, g, websocket

from quart_app import create_app
from quart_app.settings import Settings
from quart_app.web.guards import require_websocket_auth
from quart_app.web.state import resources
from quart_app.web.websockets import close_going_away, receive_or_drain
from tests.support.inprocess import served
from tests.support.users import make_user


def _app(env: dict[str, str], tmp_path: Path) -> Quart:
    app = create_app(
        Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ws.db", **env})
    )

    @app.websocket("/probe/ws")
    @require_websocket_auth()
    async def probe() -> None:
        await websocket.accept()
        async with resources().websockets.track("probe") as tracked:
            await websocket.send(json.dumps({"user_id": g.principal.user.id, "auth": g.principal.method}))
            while (message := await receive_or_drain(tracked)) is not None:
                await websocket.send(message)
            await close_going_away()

    return app


@pytest.fixture
async def server(backend_env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Quart, int]]:
    app = _app(backend_env, tmp_path)
    async with served(app) as port:
        yield app, port


async def _refusal(port: int, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(f"ws://127.0.0.1:{port}/probe/ws", additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def test_missing_and_bad_credentials_are_401_before_the_upgrade(server: tuple[Quart, int]) -> None:
    _, port = server
    status, body = await _refusal(port, {})
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await _refusal(port, {"x-api-key": "usr_nobody_forged"})
    assert (status, body["error"]) == (401, "invalid_token")
    status, body = await _refusal(port, {"Authorization": "Bearer vst_forged.token"})
    assert (status, body["error"]) == (401, "invalid_token")


async def test_api_key_and_session_token_are_accepted(server: tuple[Quart, int]) -> None:
    app, port = server
    user, key = await make_user(app)
    async with websockets.connect(f"ws://127.0.0.1:{port}/probe/ws", additional_headers={"x-api-key": key}) as ws:
        assert json.loads(await ws.recv()) == {"user_id": user.id, "auth": "api_key"}
        await ws.send("ping")
        assert await ws.recv() == "ping"
    token = app.extensions["resources"].sessions.issue(user.id)
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(f"ws://127.0.0.1:{port}/probe/ws", additional_headers=headers) as ws:
        assert json.loads(await ws.recv()) == {"user_id": user.id, "auth": "session"}


async def test_drain_marks_not_ready_then_closes_plain_websockets_with_1001(server: tuple[Quart, int]) -> None:
    app, port = server
    _, key = await make_user(app)
    sockets = [
        await websockets.connect(f"ws://127.0.0.1:{port}/probe/ws", additional_headers={"x-api-key": key})
        for _ in range(3)
    ]
    for ws in sockets:
        await ws.recv()
    _, admin = await make_user(app, role="admin")  # /health shows connection counts to admins only
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        health = (await http.get("/health", headers={"x-api-key": admin})).json()
        assert health["connections"]["probe"] == 3
        await app.extensions["drainer"].drain()
        response = await http.get("/health")
        assert response.status_code == 503 and response.json()["checks"]["draining"] is True
    for ws in sockets:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert app.extensions["resources"].websockets.counts() == {}
