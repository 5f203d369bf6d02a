"""Our service for bench/capacity.py: `asgi:application` exactly as shipped, plus one bench-only handler.

    hypercorn --config hypercorn.toml bench._ours_app:application

The service has one broadcast today, `instance_up` / `instance_down` to every client of the root namespace,
sent at start and drain with `sio.emit(event, payload, namespace="/")`. A benchmark cannot start or drain
the instance a thousand times, so this entry point adds a "broadcast" event on "/" that makes exactly that
call with the client's payload: the same AsyncServer, client manager and emit path, triggered on demand.
Nothing in the shipped app changes; the handler exists only in this module.
"""

from __future__ import annotations

import os
from typing import Any

from asgi import app, application

__all__ = ["application"]

sio = app.extensions["socketio"]


@sio.on("broadcast", namespace="/")  # type: ignore[untyped-decorator]
async def broadcast(sid: str, data: Any = None) -> None:
    await sio.emit("broadcast", data, namespace="/")


if os.environ.get("BENCH_STOCK_EMIT") == "1":
    # "before" for bench/capacity.py: python-socketio's stock client manager (a task per recipient); with
    # it, FanoutServer._send_packet also takes the stock path, so every send is python-socketio's own.
    import socketio

    sio.manager = socketio.AsyncManager()
    sio.manager.set_server(sio)
