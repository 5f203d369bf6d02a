"""Engine.IO sockets without a task per message: python-engineio's AsyncSocket, same protocol, fewer tasks.

python-engineio 4.x (`engineio/async_socket.py`) reads a websocket with, per received message, a fresh task
(`ensure_future(websocket_wait())`) awaited through `asyncio.wait_for`, and its writer's `poll()` wraps
every `queue.get()` in another `wait_for` task; each connection also holds a `_send_ping` task that sleeps
out the ping interval. With many held connections those are the bulk of the stack's per-message CPU and a
good part of its per-connection memory (docs/performance.md, "Profiles of the missed targets").

`EngineSocket` keeps the stock behaviour and replaces only the mechanics:

* the websocket receive loop is one long-lived loop, `async with asyncio.timeout(ping_interval +
  ping_timeout): data = await ws.wait()`; the upgrade handshake (probe ping, upgrade packet), the
  oversized-packet close, the close on timeout / client close and the exception handling are upstream's;
* `poll()` waits on the queue under `asyncio.timeout` (no task per wake-up) and returns exactly what
  upstream's does: QueueEmpty on timeout or cancellation, [] on the None sentinel, else every queued packet;
  the writer still waits inside `Queue.get`, so fanout.py's "writer idle" test (queue empty, a pending
  getter) holds as before;
* the server ping is a `loop.call_later` timer instead of a sleeping task (same time, same checks);
* `receive()` builds its log arguments only when the Engine.IO logger would log them.

`EngineIOServer` is python-engineio's AsyncServer whose connect path creates `EngineSocket`s;
`EngineServer` (a python-socketio AsyncServer mixin) makes python-socketio build that server and runs
the few events listed in `INLINE_EVENTS` in the reader instead of a task each (`async_handlers=True` stays
for every other event: `/voice` handlers run long and must not hold up a connection's reads and pings).

`problems()` lists what this relies on in the installed libraries and no longer finds as expected; the
methods it re-implements are fingerprinted, so an upgrade that changes them is reported for review.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from typing import Any

import engineio
import socketio
from engineio import async_server as eio_async_server
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

# Events run inline by the socket's reader instead of in a task each: only handlers that never suspend on
# I/O (a slow one would hold up that connection's reads, pings and pongs). ("/", "ping_server") is the
# root namespace's latency probe: an in-memory session read and a dict (quart_app/sockets/system.py).
INLINE_EVENTS: frozenset[tuple[str, str]] = frozenset({("/", "ping_server")})

_INFO = logging.INFO


class EngineSocket(eio_async_socket.AsyncSocket):
    """python-engineio's AsyncSocket with a task-free websocket reader, writer wait and ping timer."""

    # set in BaseSocket.__init__ (untyped upstream)
    last_ping: float | None
    connected: bool
    upgrading: bool
    upgraded: bool
    closing: bool
    closed: bool

    async def poll(self) -> list[Any]:
        """Wait for packets to send to the client (upstream's semantics, no `wait_for` task)."""
        queue = self.queue
        if queue.empty():
            try:
                async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                    first = await queue.get()
            except (TimeoutError, asyncio.CancelledError):
                raise eio_exceptions.QueueEmpty() from None
        else:
            first = queue.get_nowait()
        queue.task_done()
        if first is None:
            return []
        packets = [first]
        while True:
            try:
                pkt = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    async def receive(self, pkt: Any) -> None:
        """Receive packet from the client (upstream's, logging arguments built only when logged)."""
        server = self.server
        if server.logger.isEnabledFor(_INFO):
            server.logger.info(
                "%s: Received packet %s data %s",
                self.sid,
                eio_packet.packet_names[pkt.packet_type],
                pkt.data if not isinstance(pkt.data, bytes) else "<binary>",
            )
        packet_type = pkt.packet_type
        if packet_type == eio_packet.MESSAGE:
            await server._trigger_event("message", self.sid, pkt.data, run_async=server.async_handlers)
        elif packet_type == eio_packet.PONG:
            self.schedule_ping()
        elif packet_type == eio_packet.UPGRADE:
            await self.send(eio_packet.Packet(eio_packet.NOOP))
        elif packet_type == eio_packet.CLOSE:
            await self.close(wait=False, abort=True, reason=server.reason.CLIENT_DISCONNECT)
        else:
            raise eio_exceptions.UnknownPacketError()

    def schedule_ping(self) -> None:
        # only schedule a new ping if the previous ping wait cycle completed
        if self.last_ping:
            self.last_ping = None
            asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        """Upstream's `_send_ping` after its sleep: `send(PING)`, whose ping-timeout check cannot fire here
        (last_ping was just set) and whose `queue.put` on the unbounded queue never waits."""
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
            logger = self.server.logger
            if logger.isEnabledFor(_INFO):
                logger.info("%s: Sending packet %s data %s", self.sid, "PING", None)

    async def _websocket_handler(self, ws: Any) -> None:
        """Engine.IO handler for websocket transport."""
        server = self.server

        async def websocket_wait() -> Any:
            data = await ws.wait()
            if data and len(data) > server.max_http_buffer_size:
                raise ValueError("packet is too large")
            return data

        if self.connected:
            # the socket was already connected, so this is an upgrade
            self.upgrading = True  # hold packet sends during the upgrade

            try:
                pkt = await websocket_wait()
            except OSError:  # pragma: no cover
                return
            decoded_pkt = eio_packet.Packet(encoded_packet=pkt)
            if decoded_pkt.packet_type != eio_packet.PING or decoded_pkt.data != "probe":
                server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
                self.upgrading = False
                return
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end poll

            try:
                pkt = await websocket_wait()
            except OSError:  # pragma: no cover
                self.upgrading = False
                return
            decoded_pkt = eio_packet.Packet(encoded_packet=pkt)
            if decoded_pkt.packet_type != eio_packet.UPGRADE:
                self.upgraded = False
                server.logger.info(
                    "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.", self.sid, pkt
                )
                self.upgrading = False
                return
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True

        writer_task = asyncio.ensure_future(self._websocket_writer(ws))

        server.logger.info("%s: Upgrade to websocket successful", self.sid)

        timeout = server.ping_interval + server.ping_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    p = await websocket_wait()
            except BaseException:  # noqa: BLE001 - upstream's bare except: timeout, cancel, too large, OSError
                break
            if p is None:
                # connection closed by client
                break
            pkt = eio_packet.Packet(encoded_packet=p)
            try:
                await self.receive(pkt)
            except eio_exceptions.UnknownPacketError:  # pragma: no cover
                pass
            except eio_exceptions.SocketIsClosedError:  # pragma: no cover
                server.logger.info("Receive error -- socket is closed")
                break
            except BaseException:  # noqa: BLE001 - upstream logs anything else and keeps reading
                server.logger.exception("Unknown receive error")

        await self.queue.put(None)  # unlock the writer task so it can exit
        await writer_task
        await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)

    async def _websocket_writer(self, ws: Any) -> None:
        """Upstream's nested `writer()`: send what `poll()` returns until it times out or is told to stop."""
        while True:
            try:
                packets = await self.poll()
            except eio_exceptions.QueueEmpty:
                break
            if not packets:
                # empty packet list returned -> connection closed
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except BaseException:  # noqa: BLE001 - upstream's bare except
                break
        await ws.close()


class EngineIOServer(engineio.AsyncServer):
    """python-engineio's AsyncServer whose new connections are `EngineSocket`s."""

    socket_class = EngineSocket
    start_service_task: bool  # set in BaseServer.__init__ (untyped upstream)

    async def _handle_connect(self, environ: dict[str, Any], transport: str, jsonp_index: Any = None) -> Any:
        """Handle a client connection request (upstream's, building `socket_class`)."""
        if self.start_service_task:
            # start the service task to monitor connected clients
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)

        sid = self.generate_id()
        s = self.socket_class(self, sid)
        self.sockets[sid] = s

        pkt = eio_packet.Packet(
            eio_packet.OPEN,
            {
                "sid": sid,
                "upgrades": self._upgrades(sid, transport),
                "pingTimeout": int(self.ping_timeout * 1000),
                "pingInterval": int(self.ping_interval + self.ping_interval_grace_period) * 1000,
                "maxPayload": self.max_http_buffer_size,
            },
        )
        await s.send(pkt)

        ret = await self._trigger_event("connect", sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            self.logger.warning("Application rejected connection")
            return self._unauthorized(ret or None)

        s.schedule_ping()

        if transport == "websocket":
            ret = await s.handle_get_request(environ)
            if s.closed and sid in self.sockets:
                # websocket connection ended, so we are done
                del self.sockets[sid]
            return ret
        s.connected = True
        headers = None
        if self.cookie:
            if isinstance(self.cookie, dict):
                headers = [("Set-Cookie", self._generate_sid_cookie(sid, self.cookie))]
            else:
                headers = [
                    (
                        "Set-Cookie",
                        self._generate_sid_cookie(sid, {"name": self.cookie, "path": "/", "SameSite": "Lax"}),
                    )
                ]
        try:
            return self._ok(await s.poll(), headers=headers, jsonp_index=jsonp_index)
        except eio_exceptions.QueueEmpty:
            return self._bad_request()


class EngineServer(socketio.AsyncServer):
    """python-socketio AsyncServer on `EngineIOServer`, running `INLINE_EVENTS` without a task each."""

    inline_events: frozenset[tuple[str, str]] = INLINE_EVENTS

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return EngineIOServer

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        event = data[0] if isinstance(data, list) and data else None
        namespace = namespace or "/"
        if not self.async_handlers or (namespace, event) not in self.inline_events:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        self.logger.info('received event "%s" from %s [%s]', event, sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            self.logger.warning("%s is not connected to namespace %s", sid, namespace)
            return
        try:
            await self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
        except Exception:  # in a task it would end only that task; here it must not end the reader
            self.logger.exception("event %r handler error", event)


# The upstream methods EngineSocket / EngineIOServer re-implement, as read in python-engineio 4.15.1
# (sha256 of `inspect.getsource`, first 16 hex digits). A different source means upstream changed them:
# re-read them, port the change, and update the fingerprint.
FINGERPRINTS: dict[str, str] = {
    "engineio.async_socket.AsyncSocket.poll": "826f58a9f3606db2",
    "engineio.async_socket.AsyncSocket.receive": "a91ae36ec2fb5340",
    "engineio.async_socket.AsyncSocket.schedule_ping": "fe316639159cd70d",
    "engineio.async_socket.AsyncSocket._send_ping": "67db82a704ea49d0",
    "engineio.async_socket.AsyncSocket._websocket_handler": "27f120df4d717a24",
    "engineio.async_server.AsyncServer._handle_connect": "5bd7edc1d1ae115a",
    "socketio.async_server.AsyncServer._handle_event": "65178105ef8b593d",
}

_OBJECTS: dict[str, Any] = {
    "engineio.async_socket.AsyncSocket": eio_async_socket.AsyncSocket,
    "engineio.async_server.AsyncServer": eio_async_server.AsyncServer,
    "socketio.async_server.AsyncServer": socketio.AsyncServer,
}

# Attributes used here that are not public API: (owner, attribute).
_REQUIRED: tuple[tuple[Any, str], ...] = (
    (socketio.AsyncServer, "_engineio_server_class"),
    (socketio.AsyncServer, "_handle_event"),
    (socketio.AsyncServer, "_handle_event_internal"),
    (engineio.AsyncServer, "_handle_connect"),
    (engineio.AsyncServer, "_trigger_event"),
    (engineio.AsyncServer, "_upgrades"),
    (engineio.AsyncServer, "_ok"),
    (engineio.AsyncServer, "_unauthorized"),
    (engineio.AsyncServer, "_bad_request"),
    (engineio.AsyncServer, "_generate_sid_cookie"),
    (engineio.AsyncServer, "_service_task"),
    (engineio.AsyncServer, "generate_id"),
    (eio_async_socket.AsyncSocket, "_websocket_handler"),
    (eio_async_socket.AsyncSocket, "_send_ping"),
    (eio_async_socket.AsyncSocket, "check_ping_timeout"),
    (eio_exceptions, "QueueEmpty"),
    (eio_exceptions, "UnknownPacketError"),
    (eio_exceptions, "SocketIsClosedError"),
    (eio_packet, "packet_names"),
)


def fingerprint(qualified: str) -> str:
    """sha256 (16 hex digits) of the source of `module.Class.method` as installed."""
    owner, _, name = qualified.rpartition(".")
    source = inspect.getsource(getattr(_OBJECTS[owner], name))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def problems() -> list[str]:
    """What engine.py relies on in python-engineio / python-socketio and no longer finds (empty when all is well)."""
    found: list[str] = []
    for owner, attr in _REQUIRED:
        if not hasattr(owner, attr):
            found.append(f"{getattr(owner, '__qualname__', getattr(owner, '__name__', owner))}.{attr} is missing")
    if not hasattr(asyncio, "timeout"):
        found.append("asyncio.timeout is missing (Python < 3.11)")
    for qualified, expected in FINGERPRINTS.items():
        try:
            actual = fingerprint(qualified)
        except (AttributeError, OSError, TypeError) as exc:
            found.append(f"{qualified}: cannot read its source ({exc!r})")
            continue
        if actual != expected:
            found.append(
                f"{qualified} changed upstream (fingerprint {actual}, engine.py was written against {expected})"
            )
    return found
