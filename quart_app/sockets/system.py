"""The root namespace "/": instance lifecycle notices and a latency probe.

Every client may listen here for `instance_up` / `instance_down` ({"instance", "version"}), which any
instance broadcasts through the message queue as it starts or drains, so clients reconnect promptly
during a rolling deploy instead of waiting for a ping timeout.
"""

from __future__ import annotations

import time
from typing import Any

import socketio

from ..features import BaseFeature
from ..resources import Resources
from ..version import VERSION
from .handshake import authenticate_handshake


class SystemNamespace(socketio.AsyncNamespace):
    """Open to anonymous clients; a client that sends `auth: {token}` must send a valid one."""

    def __init__(self, namespace: str, resources: Resources) -> None:
        super().__init__(namespace)
        self.resources = resources

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_handshake(self.resources.authenticator, auth, required=False)
        await self.save_session(sid, {"connected_at": time.time(), "user_id": principal.user.id if principal else None})

    async def on_ping_server(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Ack with the serving instance and server time; clients measure round trips with it."""
        session = await self.get_session(sid)
        return {
            "instance": self.resources.settings.instance_id,
            "version": VERSION,
            "server_time": time.time(),
            "user_id": session.get("user_id"),
        }


class SystemSocket(BaseFeature):
    """Registers the root namespace once the resources are open."""

    name = "socketio-root"

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def start(self) -> None:
        self.resources.sio.register_namespace(SystemNamespace("/", self.resources))
