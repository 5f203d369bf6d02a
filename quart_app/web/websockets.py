"""Plain WebSocket routes: receive while watching the drain, and close with the right code."""

from __future__ import annotations

import asyncio

from quart import websocket

from ..resources import TrackedSocket

GOING_AWAY = 1001  # RFC 6455: the server is shutting down


async def receive_or_drain(tracked: TrackedSocket) -> str | bytes | None:
    """The client's next message, or None once the drain asked this socket to close.

    One await per message on the hot path (no helper tasks): the drain wakes a blocked receive by
    cancelling it (`TrackedSocket.close`), and that cancellation, told apart from any other by
    `uncancel()`, becomes the None. A message already received is never thrown away.
    """
    if tracked.closing.is_set():
        return None
    task = asyncio.current_task()
    assert task is not None
    tracked.receivers.add(task)
    try:
        return await websocket.receive()
    except asyncio.CancelledError:
        if tracked.closing.is_set() and task.uncancel() == 0:
            return None
        raise
    finally:
        tracked.receivers.discard(task)


async def close_going_away(reason: str = "server is restarting; reconnect") -> None:
    await websocket.close(GOING_AWAY, reason)
