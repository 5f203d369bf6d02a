"""Every use of hypercorn's and python-socketio's private internals, in one place.

The drain needs four things neither library offers publicly. `check()` verifies each is still there
in the installed versions; `tests/process/test_internals.py` calls it, so an upgrade that breaks one
fails loudly in CI instead of silently making shutdown slow or dropping the `instance_down` notice.
Re-check all of them on any hypercorn, python-socketio or python-engineio upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import multiprocessing
import signal
from typing import Any

import engineio
import hypercorn.asyncio.run as hypercorn_run
import socketio
from hypercorn.protocol.ws_stream import WSStream

# hypercorn's asyncio `serve` routes SIGINT/SIGTERM to its loop with `loop.add_signal_handler`, which
# installs asyncio's own no-op Python-level handler of this name.
LOOP_SIGNAL_HANDLER = "_sighandler_noop"
PING_TASK = "WSStream._send_pings"


def worker_shutdown_event() -> Any | None:
    """In a hypercorn worker process, the multiprocessing.Event the parent sets to stop the workers.

    Hypercorn runs the app in a spawned worker whenever `workers >= 1`, passing `shutdown_event` as a
    keyword argument of the worker's Process; the parent takes SIGTERM and sets it.
    """
    if multiprocessing.parent_process() is None:
        return None
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None) or {}
    event = kwargs.get("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None


def hypercorn_owns_sigint() -> bool:
    """True when SIGINT is routed to an asyncio loop handler (hypercorn's serve), not Python's default."""
    handler = signal.getsignal(signal.SIGINT)
    return getattr(handler, "__name__", "") == LOOP_SIGNAL_HANDLER


def cancel_websocket_keepalive_pings() -> int:
    """Let hypercorn finish closed WebSocket connections now instead of at their next keep-alive ping.

    Hypercorn (0.18) runs one `WSStream._send_pings` task per WebSocket when websocket_ping_interval is
    set; it notices a closed socket only when its sleep ends, and the connection's task waits for it.
    Shutdown waits for connection tasks, so each WebSocket could hold the process for a whole interval.
    Cancelling them is clean: a task group ignores children that were cancelled.
    """
    cancelled = 0
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "__qualname__", "") == PING_TASK:
            task.cancel()
            cancelled += 1
    return cancelled


async def send_packet_now(sio: socketio.AsyncServer, eio_sid: str, packet: socketio.packet.Packet) -> None:
    """Queue a packet for one Engine.IO session without yielding to the loop first (`sio.emit` yields)."""
    await sio._send_packet(eio_sid, packet)


async def close_engineio_sessions(sio: socketio.AsyncServer) -> None:
    """End every Engine.IO session now; its CLOSE packet goes out with whatever is already queued.

    close(wait=False): `eio.disconnect()` would wait for a polling client to fetch the packet.
    """
    for eio_socket in list(sio.eio.sockets.values()):
        with contextlib.suppress(Exception):
            await eio_socket.close(wait=False)


def check() -> list[str]:
    """What no longer holds in the installed versions (empty when all is well)."""
    problems = []
    if not inspect.iscoroutinefunction(getattr(WSStream, "_send_pings", None)):
        problems.append("hypercorn WSStream._send_pings is gone: keep-alive ping tasks can't be found")
    if not callable(getattr(socketio.AsyncServer, "_send_packet", None)):
        problems.append("python-socketio AsyncServer._send_packet is gone")
    close = getattr(engineio.async_socket.AsyncSocket, "close", None)
    if close is None or "wait" not in inspect.signature(close).parameters:
        problems.append("python-engineio AsyncSocket.close(wait=...) is gone")
    if not hasattr(socketio.AsyncServer(async_mode="asgi").eio, "sockets"):
        problems.append("python-engineio AsyncServer.sockets is gone")
    if not callable(getattr(asyncio.unix_events, LOOP_SIGNAL_HANDLER, None)):
        problems.append(f"asyncio.unix_events.{LOOP_SIGNAL_HANDLER} is gone: hypercorn's SIGINT can't be detected")
    if "shutdown_event" not in inspect.signature(hypercorn_run.asyncio_worker).parameters:
        problems.append("hypercorn asyncio_worker no longer takes shutdown_event: workers can't be told to drain")
    return problems
