"""Monitoring test helpers: a `/monitoring` client that records every update, and what a simulated call needs
(a tenant, a Twilio side that sends nothing, the app's calls feature)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import socketio
from quart import Quart

from quart_app.calls.feature import RealtimeCalls
from quart_app.calls.session import TwilioSide
from quart_app.db.tenants import Tenant
from tests.sockets.clients import Recorder

HANG_GUARD = 20.0


class Dashboard:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.recorder = Recorder()
        for event in ("monitoring_update", "monitoring_error"):
            self.client.on(
                event, lambda data=None, event=event: self.recorder.record(event, data), namespace="/monitoring"
            )

    async def connect(self, url: str, token: str) -> Dashboard:
        await self.client.connect(
            url, namespaces=["/monitoring"], auth={"token": token}, transports=["websocket"], wait_timeout=HANG_GUARD
        )
        return self

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.client.call(event, data, namespace="/monitoring", timeout=HANG_GUARD)

    def updates(self) -> list[dict[str, Any]]:
        return [p for name, p in self.recorder.events if name == "monitoring_update"]

    async def next_update(self, within: float = HANG_GUARD) -> dict[str, Any]:
        seen = len(self.updates())
        return await self.recorder.wait_for("monitoring_update", lambda _: len(self.updates()) > seen, within)

    async def update_where(self, predicate: Callable[[dict[str, Any]], bool], within: float = 30.0) -> dict[str, Any]:
        """The first update from now on that satisfies `predicate` (a hang guard, not a speed assertion)."""
        seen = len(self.updates())
        return await self.recorder.wait_for(
            "monitoring_update", lambda p: len(self.updates()) > seen and predicate(p), within
        )

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


class SilentTwilio(TwilioSide):
    async def send(self, text: str) -> None:
        return None

    async def close(self, code: int, reason: str) -> None:
        return None


def realtime_calls(app: Quart) -> RealtimeCalls:
    return next(f for f in app.extensions["features"] if isinstance(f, RealtimeCalls))


def demo_tenant() -> Tenant:
    return Tenant(
        id="ten_demo",
        name="Demo dental",
        instructions="Answer questions about opening hours.",
        greeting=None,
        voice=None,
        model=None,
        turn_detection={"type": "server_vad"},
        knowledge_enabled=False,
        max_call_s=None,
        audio_format=None,
        created_at=0.0,
        updated_at=0.0,
    )
