"""Plain WebSocket routes: receive while watching the drain, and close with the right code."""

from __future__ import annotations

import asyncio

from quart import websocket

from ..resources import TrackedSocket

GOING_AWAY = 1001  # RFC 6455: the server is shutting down


async def receive_or_drain(tracked: TrackedSocket) -> str | bytes | None:
    """The client's next message, or None once the drain asked this socket to close."""
    receiving = asyncio.ensure_future(websocket.receive())
    closing = asyncio.ensure_future(tracked.closing.wait())
    try:
        await asyncio.wait((receiving, closing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
        if not receiving.done():
            receiving.cancel()
    if receiving.done() and not receiving.cancelled():
        return receiving.result()
    return None


async def close_going_away(reason: str = "server is restarting; reconnect") -> None:
    await websocket.close(GOING_AWAY, reason)
