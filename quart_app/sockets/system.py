"""The root namespace "/": instance lifecycle notices and a latency probe.

Every client may listen here for `instance_up` / `instance_down` ({"instance", "version"}), which any
instance broadcasts through the message queue as it starts or drains, so clients reconnect promptly
during a rolling deploy instead of waiting for a ping timeout.
"""

from __future__ import annotations

import time
from typing import Any

import socketio

from ..settings import Settings
from ..version import VERSION


class SystemNamespace(socketio.AsyncNamespace):
    def __init__(self, namespace: str, settings: Settings) -> None:
        super().__init__(namespace)
        self.settings = settings

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await self.save_session(sid, {"connected_at": time.time()})

    async def on_ping_server(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Ack with the serving instance and server time; clients measure round trips with it."""
        return {"instance": self.settings.instance_id, "version": VERSION, "server_time": time.time()}
