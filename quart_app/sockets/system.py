"""The root namespace "/": instance lifecycle notices and a latency probe.

Every client may listen here for `instance_up` / `instance_down` ({"instance", "version"}), which any
instance broadcasts through the message queue as it starts or drains, so clients reconnect promptly
during a rolling deploy instead of waiting for a ping timeout.
"""

from __future__ import annotations

import time
from typing import Any

import socketio

from ..runtime import Runtime
from ..version import VERSION
from .handshake import authenticate_handshake


class SystemNamespace(socketio.AsyncNamespace):
    """Open to anonymous clients; a client that sends `auth: {token}` must send a valid one."""

    def __init__(self, namespace: str, rt: Runtime) -> None:
        super().__init__(namespace)
        self.rt = rt

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_handshake(self.rt, auth, required=False)
        await self.save_session(
            sid, {"connected_at": time.time(), "user_id": principal.user.id if principal else None}
        )

    async def on_ping_server(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Ack with the serving instance and server time; clients measure round trips with it."""
        session = await self.get_session(sid)
        return {
            "instance": self.rt.settings.instance_id,
            "version": VERSION,
            "server_time": time.time(),
            "user_id": session.get("user_id"),
        }
