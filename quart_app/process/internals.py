"""Every use of hypercorn's and python-socketio's private internals, in one place.

The drain needs four things neither library offers publicly; the broadcast fan-out (sockets/fanout.py)
writes pre-built frames straight to hypercorn's transport, which relies on hypercorn's, wsproto's and
python-engineio's insides (the WSStream behind the ASGI send, its state and wsproto connection, the
TCPServer's send lock and writer, engineio's ASGI websocket class and socket fields); the Engine.IO socket
(sockets/engine.py) re-implements upstream methods and reports, through `engine.problems()`, an attribute it
no longer finds or an upstream method whose source changed; the SQLite connection pool (db/sqlite_pool.py)
reads databases' and aiosqlite's private attributes. `check()` verifies
each is still there in the installed versions, and drives one real websocket through hypercorn (asyncio
and uvloop) to see the fan-out take its raw path and the client get the frame;
`tests/process/test_internals.py` calls it, so an upgrade that breaks one fails loudly in CI instead of
silently making shutdown slow, dropping the `instance_down` notice, or sending every broadcast the slow
way (or worse, a corrupt frame). Re-check all of them on any hypercorn, wsproto, python-socketio,
python-engineio, databases or aiosqlite upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import multiprocessing
import signal
import socket
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiosqlite
import engineio
import hypercorn.asyncio.run as hypercorn_run
import socketio
from databases.backends.sqlite import SQLiteBackend, SQLitePool
from engineio.async_drivers import asgi as engineio_asgi
from hypercorn.asyncio import serve
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol

from ..settings import Settings
from ..sockets import engine, fanout
from ..sockets.server import build_socketio

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
    return _drain_problems() + fanout_problems() + engine.problems() + sqlite_pool_problems()


def _drain_problems() -> list[str]:
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


def sqlite_pool_problems() -> list[str]:
    """What db/sqlite_pool.py relies on in databases and aiosqlite (their private attributes)."""
    problems = []
    if _init_sets(SQLiteBackend, "_pool") or _init_sets(SQLitePool, "_database", "_options"):
        problems.append("databases' SQLite backend no longer keeps its pool in _pool (with _database, _options)")
    if not (_has(SQLitePool, "acquire", coroutine=True) and _has(SQLitePool, "release", coroutine=True)):
        problems.append("databases' SQLitePool no longer has acquire() and release()")
    missing = _init_sets(aiosqlite.Connection, "_running", "_connection", "_thread")
    if missing:
        problems.append(f"aiosqlite Connection no longer sets {', '.join(missing)}")
    return problems


# ----- the broadcast fan-out's raw path (sockets/fanout.py) ---------------------------------------------------


def fanout_problems() -> list[str]:
    """What sockets/fanout.py relies on and no longer finds; then one websocket driven through the real stack."""
    problems = _fanout_structure()
    if problems:
        return problems  # the live probe would only fail less clearly
    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = [("asyncio", asyncio.new_event_loop)]
    with contextlib.suppress(ImportError):
        import uvloop  # hypercorn.toml's worker_class

        loops.append(("uvloop", uvloop.new_event_loop))
    for name, new_loop in loops:
        problem = _run_in_thread(new_loop, _raw_path_probe())
        if problem:
            problems.append(f"fan-out raw path under hypercorn ({name}): {problem}")
    return problems


def _has(cls: type, name: str, *, coroutine: bool = False) -> bool:
    found = getattr(cls, name, None)
    return inspect.iscoroutinefunction(found) if coroutine else callable(found)


def _init_sets(cls: type, *names: str) -> list[str]:
    """Those of `names` that `cls.__init__` no longer assigns as `self.<name>`."""
    try:
        source = inspect.getsource(vars(cls)["__init__"])
    except (KeyError, OSError, TypeError):
        return list(names)
    return [name for name in names if f"self.{name} =" not in source and f"self.{name}:" not in source]


def _fanout_structure() -> list[str]:
    problems = []
    # hypercorn: the ASGI send of a websocket is WSStream.app_send; WSStream.send is H11Protocol.stream_send,
    # whose `send` is TCPServer.protocol_send, which writes under `send_lock` to `writer`.
    if not _has(WSStream, "app_send", coroutine=True) or "self.app_send" not in inspect.getsource(WSStream.handle):
        problems.append("hypercorn WSStream no longer hands the app its bound app_send as the ASGI send")
    for cls, names in ((WSStream, ("send", "closed", "state")), (H11Protocol, ("send",))):
        missing = _init_sets(cls, *names)
        if missing:
            problems.append(f"hypercorn {cls.__name__} no longer sets {', '.join(missing)}")
    missing = _init_sets(TCPServer, "send_lock", "writer")
    if missing:
        problems.append(f"hypercorn TCPServer no longer sets {', '.join(missing)}")
    if "self.stream_send" not in inspect.getsource(H11Protocol._create_stream):
        problems.append("hypercorn H11Protocol no longer gives its WSStream stream_send")
    if not _has(TCPServer, "protocol_send", coroutine=True) or "send_lock" not in inspect.getsource(
        TCPServer.protocol_send
    ):
        problems.append("hypercorn TCPServer.protocol_send no longer writes under send_lock")
    if not hasattr(ASGIWebsocketState, "CONNECTED"):
        problems.append("hypercorn ASGIWebsocketState.CONNECTED is gone")
    # wsproto: the WSStream's connection, its state and its protocol's negotiated extensions.
    if not hasattr(ConnectionState, "OPEN"):
        problems.append("wsproto ConnectionState.OPEN is gone")
    if _init_sets(Connection, "_proto") or not isinstance(getattr(Connection, "state", None), property):
        problems.append("wsproto Connection no longer has _proto and the state property")
    if _init_sets(FrameProtocol, "extensions"):
        problems.append("wsproto FrameProtocol no longer sets extensions: per-message deflate can't be seen")
    # python-engineio: the ASGI websocket class and what the fan-out reads on each socket.
    if engineio_asgi._async.get("websocket") is not engineio_asgi.WebSocket:
        problems.append("python-engineio's asgi driver table no longer names its WebSocket class")
    if _init_sets(engineio_asgi.WebSocket, "handler", "asgi_send") or not _has(
        engineio_asgi.WebSocket, "send", coroutine=True
    ):
        problems.append("python-engineio asgi WebSocket no longer has handler, asgi_send and send()")
    if "self._websocket_handler" not in inspect.getsource(engineio.async_socket.AsyncSocket._upgrade_websocket):
        problems.append("python-engineio no longer gives its websocket class the socket's bound handler")
    missing = _init_sets(
        engineio.base_socket.BaseSocket, "queue", "upgraded", "upgrading", "closed", "closing", "last_ping"
    )
    if missing:
        problems.append(f"python-engineio socket no longer sets {', '.join(missing)}")
    if not hasattr(asyncio.Queue(), "_getters"):
        problems.append("asyncio.Queue._getters is gone: an idle Engine.IO writer can't be recognised")
    if not _has(socketio.AsyncManager, "get_participants"):
        problems.append("python-socketio AsyncManager.get_participants is gone")
    return problems


def _run_in_thread(
    new_loop: Callable[[], asyncio.AbstractEventLoop], coro: Coroutine[Any, Any, str | None]
) -> str | None:
    """Run `coro` on a fresh loop in a thread of its own (check() may be called from inside a running loop)."""

    def run() -> str | None:
        with asyncio.Runner(loop_factory=new_loop) as runner:  # cancels whatever the probe left running
            return runner.run(asyncio.wait_for(coro, 20))

    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(run).result()
        except Exception as exc:  # the probe itself failed: that is the finding
            return f"{type(exc).__name__}: {exc}"


async def _raw_path_probe() -> str | None:
    """One Socket.IO client over a real websocket to hypercorn serving the shipped AsyncServer; a broadcast must
    be written to it as one pre-built frame (`writes_raw`) and arrive intact."""
    sio = build_socketio(Settings.from_env({"APP_ENV": "test", "DATABASE_URL": "sqlite+aiosqlite:///:memory:"}))
    manager = sio.manager
    if not isinstance(manager, fanout.FanoutManager):
        return f"the server's manager is {type(manager).__name__}, not a FanoutManager"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns the socket from here
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    server = asyncio.ensure_future(serve(socketio.ASGIApp(sio), config, shutdown_trigger=stop.wait))
    try:
        return await _probe_client(sio, manager, port, server)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server, 5)
        with contextlib.suppress(Exception):
            await sio.shutdown()  # Engine.IO's service task


async def _probe_client(sio: Any, manager: fanout.FanoutManager, port: int, server: asyncio.Future[None]) -> str | None:
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            if server.done():
                return f"hypercorn did not start: {server.exception()!r}"
            await asyncio.sleep(0.02)
    else:
        return "hypercorn did not listen"
    ws = WSConnection(ConnectionType.CLIENT)
    inbox: list[Any] = []

    async def next_event() -> Any:
        while not inbox:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            ws.receive_data(data)
            inbox.extend(ws.events())
        return inbox.pop(0)

    try:
        writer.write(ws.send(Request(host="127.0.0.1", target="/socket.io/?EIO=4&transport=websocket")))
        if not isinstance(await next_event(), AcceptConnection):
            return "the websocket handshake was refused"
        opened = await next_event()
        if not (isinstance(opened, TextMessage) and opened.data.startswith("0")):
            return f"no Engine.IO open packet: {opened!r}"
        writer.write(ws.send(TextMessage("40")))
        connected = await next_event()
        if not (isinstance(connected, TextMessage) and connected.data.startswith("40")):
            return f"no Socket.IO connect reply: {connected!r}"
        eio_socket = next(iter(sio.eio.sockets.values()))
        tracked = getattr(eio_socket, "fanout_ws", None)
        if not isinstance(tracked, fanout.TrackedWebSocket):
            return "the Engine.IO socket has no TrackedWebSocket (fanout.install no longer takes effect)"
        if fanout.hypercorn_raw(tracked.asgi_send) is None:
            return "hypercorn_raw finds no (WSStream, TCPServer, transport) behind hypercorn's ASGI send"
        queue = eio_socket.queue
        for _ in range(100):  # until the socket's writer waits on its queue again
            if fanout.writer_idle(queue) and tracked.raw_writer() is not None:
                break
            await asyncio.sleep(0.01)
        else:
            return "raw_writer() stays None on an idle, open websocket (state, send lock or transport checks)"
        raw_before = manager.writes_raw
        manager.fan_out([eio_socket.sid], ['2["probe",{"n":1}]'])
        if manager.writes_raw != raw_before + 1:
            return "the fan-out did not take the raw path on an idle websocket"
        received = await next_event()
        if not (isinstance(received, TextMessage) and received.data == '42["probe",{"n":1}]'):
            return f"the client got {received!r} instead of the raw frame"
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
