"""Broadcast fan-out for python-socketio: encode a packet once, write it to every recipient without a task each.

python-socketio's `AsyncManager.emit` (5.x) already builds the Engine.IO packets once, but then creates one
asyncio task per recipient (`_send_eio_packet`), waits for all of them with `asyncio.wait`, and each task
puts the packet on the socket's queue, whose writer task wakes up in `AsyncSocket.poll` (a fresh
`asyncio.wait_for` task per wake-up) to write it. On this machine that is ~0.1–0.2 ms of CPU per recipient,
most of it tasks and the event loop rather than bytes.

`FanoutManager.emit` (no callback: callbacks need one ack id per recipient and keep the stock path):

* encodes the Socket.IO packet and its Engine.IO packets once, as before;
* builds the websocket frame bytes once (header + payload, unmasked, as every recipient gets them);
* per recipient, with no task and no await:
  - a websocket client under hypercorn whose writer is idle (nothing queued in Engine.IO, hypercorn's send
    lock free, under 64 KiB buffered, no per-message deflate) gets those bytes `transport.write`n: what
    hypercorn's own send path ends in, without building the frame again through wsproto for each one;
  - another idle websocket client gets the frame through its ASGI `send` coroutine, started eagerly:
    hypercorn's send path completes without suspending unless the connection is under backpressure (its
    send lock or `drain()`), and only then is the rest of that one send handed to a task. A suspended send
    has already taken its place in hypercorn's FIFO send lock, so later packets to that client stay in order;
  - every other client (long-polling, upgrading, a busy writer, a socket past its ping timeout) gets the
    packets `put_nowait` on its Engine.IO queue, which is exactly what the stock task would have done;
* skips closed sockets as the stock path does (it raised and `asyncio.wait` swallowed it).

Rooms, `skip_sid`, namespaces, binary attachments (a text frame then one binary frame per attachment) and
both transports behave as before; `FanoutRedisManager` puts the same emit under AsyncRedisManager, so emits
arriving from Redis pub/sub fan out the same way, and `FanoutServer` sends single packets (acks, connect
replies) through the same path. `install(sio)` wraps the Engine.IO server's websocket class so that each
socket's ASGI websocket is known while it is open. Measured in bench/capacity.py; see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Generator, Iterable
from typing import Any

import socketio
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as AsgiWebSocket
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from socketio import packet as sio_packet
from wsproto.connection import ConnectionState

log = logging.getLogger(__name__)


class _Resume:
    """Awaitable that continues a coroutine which was started outside a task and suspended on `yielded`.

    The coroutine had already yielded its future (with `_asyncio_future_blocking` set); yielding the same
    object from inside a task makes the task wait for it exactly as if the coroutine had run there.
    """

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                value = yield yielded
            except BaseException as exc:  # noqa: BLE001 - cancellation and errors go back into the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    try:
        await _Resume(coro, yielded)
    except Exception as exc:  # a failed write to one client must not surface anywhere else
        log.debug("fan-out write failed: %r", exc)


def run_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[None] | None:
    """Run `coro` now, up to its first suspension; only if it suspends, finish it in a task (returned).

    What asyncio.eager_task_factory (3.12+) does for every task, for one coroutine and on 3.11 too.
    """
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    except Exception as exc:
        log.debug("fan-out write failed: %r", exc)
        return None
    return asyncio.ensure_future(_finish(coro, yielded))


class TrackedWebSocket(AsgiWebSocket):
    """engineio's ASGI websocket wrapper, registered on its Engine.IO socket while the connection is open.

    Under hypercorn it also finds the connection's transport (`raw_writer`), so that a broadcast can write
    one pre-built frame to it, as hypercorn itself would, without hypercorn's per-message send path.
    """

    _raw: tuple[Any, Any, Any] | None = None  # (hypercorn WSStream, its TCPServer, the transport)
    _raw_checked = False

    async def __call__(self, environ: dict[str, Any]) -> Any:
        eio_socket = getattr(self.handler, "__self__", None)
        if eio_socket is not None:
            eio_socket.fanout_ws = self
        try:
            return await super().__call__(environ)
        finally:
            if eio_socket is not None and getattr(eio_socket, "fanout_ws", None) is self:
                eio_socket.fanout_ws = None

    def raw_writer(self) -> Any:
        """The transport to write a complete frame to now, or None to take the ASGI send path instead.

        Only for hypercorn's asyncio/uvloop server, a websocket without extensions (per-message deflate
        needs per-connection compression), open on both sides, with no send in progress (hypercorn's send
        lock free: nothing of this connection is half written) and no backlog (below 64 KiB buffered).
        """
        if not self._raw_checked:
            self._raw_checked = True
            self._raw = hypercorn_raw(self.asgi_send)
        raw = self._raw
        if raw is None:
            return None
        stream, tcp, transport = raw
        if (
            stream.closed
            or stream.state is not _CONNECTED
            or stream.connection.state is not _OPEN
            or tcp.send_lock.locked()
            or transport.is_closing()
            or transport.get_write_buffer_size() > RAW_BACKLOG
        ):
            return None
        return transport


RAW_BACKLOG = 64 * 1024

# hypercorn and wsproto are what asgi.py runs on (requirements.txt); under another server `hypercorn_raw`
# finds no WSStream and every send takes the ASGI path.
_CONNECTED = ASGIWebsocketState.CONNECTED
_OPEN = ConnectionState.OPEN


def hypercorn_raw(asgi_send: Any) -> tuple[Any, Any, Any] | None:
    """(WSStream, TCPServer, transport) behind hypercorn's ASGI send callable, or None if it is not that."""
    stream = getattr(asgi_send, "__self__", None)
    if not isinstance(stream, WSStream):
        return None
    connection = getattr(stream, "connection", None)
    proto = getattr(connection, "_proto", None)
    if proto is None or getattr(proto, "extensions", None):
        return None  # not accepted yet, or per-message deflate
    h11_protocol = getattr(getattr(stream, "send", None), "__self__", None)
    tcp = getattr(getattr(h11_protocol, "send", None), "__self__", None)
    writer = getattr(tcp, "writer", None)
    transport = getattr(writer, "transport", None)
    if transport is None or not isinstance(getattr(tcp, "send_lock", None), asyncio.Lock):
        return None
    return stream, tcp, transport


def ws_frame(payload: str | bytes) -> bytes:
    """One complete, unmasked server frame (RFC 6455 5.2): FIN + text or binary opcode, length, payload."""
    if isinstance(payload, str):
        data, first = payload.encode(), 0x81
    else:
        data, first = bytes(payload), 0x82
    n = len(data)
    if n < 126:
        head = bytes((first, n))
    elif n < 65536:
        head = bytes((first, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + n.to_bytes(8, "big")
    return head + data


def writer_idle(queue: asyncio.Queue[Any]) -> bool:
    """Nothing queued and the socket's writer waiting on the queue (not in the middle of a write)."""
    if not queue.empty():
        return False
    getters: Iterable[asyncio.Future[Any]] = getattr(queue, "_getters", None) or ()
    return any(not g.done() for g in getters)


class FanoutManager(socketio.AsyncManager):
    """AsyncManager whose callback-less emit writes each recipient's packets without a task per recipient."""

    writes_raw = 0  # counters for tests and the benchmark: pre-built frames written to the transport
    writes_direct = 0  # frames sent through the websocket's ASGI send, started eagerly
    writes_queued = 0  # packets put on an Engine.IO queue (polling, upgrading, busy writer)
    writes_suspended = 0  # direct writes that hit backpressure and were finished by a task

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            data = list(data)
        elif data is not None:
            data = [data]
        else:
            data = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *data])
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        self.fan_out((eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip), parts)

    def fan_out(self, eio_sids: Iterable[str], parts: list[Any]) -> None:
        """Deliver the encoded Socket.IO packet `parts` (text, then any binary attachments) to `eio_sids`."""
        ws_pkts = _eio_packets(parts)
        frames = [p.encode() for p in ws_pkts]  # what the websocket writer sends: str, then raw bytes
        raw_frames: bytes | None = None  # built on first use, then the same bytes for every recipient
        binary = len(parts) > 1
        # engineio's Packet caches its first encoding whatever `b64` asks for; long-polling encodes binary as
        # base64 text and websocket as raw bytes, so binary packets are never shared across the two.
        poll_pkts = _eio_packets(parts) if binary else ws_pkts
        eio = self.server.eio
        sockets = eio.sockets
        timeout = eio.ping_timeout
        now = time.time()
        for eio_sid in eio_sids:
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            if socket.upgrading:  # either transport may send these: packets of its own
                pkts = _eio_packets(parts) if binary else ws_pkts
            else:
                pkts = ws_pkts if socket.upgraded else poll_pkts
            if socket.last_ping and now - socket.last_ping > timeout:
                # the stock path: its send() closes a socket past its ping timeout; rare, so a task is fine
                for p in pkts:
                    eio.start_background_task(socket.send, p)
                continue
            ws = getattr(socket, "fanout_ws", None)
            if ws is not None and socket.upgraded and not socket.upgrading and writer_idle(socket.queue):
                transport = ws.raw_writer()
                if transport is not None:
                    if raw_frames is None:
                        raw_frames = b"".join(ws_frame(f) for f in frames)
                    transport.write(raw_frames)
                    self.writes_raw += 1
                    continue
                for frame in frames:
                    self.writes_direct += 1
                    if run_eagerly(ws.send(frame)) is not None:
                        self.writes_suspended += 1
            else:
                for p in pkts:
                    socket.queue.put_nowait(p)
                    self.writes_queued += 1


def _eio_packets(parts: list[Any]) -> list[Any]:
    return [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]


class FanoutServer(socketio.AsyncServer):
    """AsyncServer whose single-recipient packets (acks, connect replies, `to=sid` through the manager's
    emit) take the same path as a broadcast's: written directly to an idle websocket, else queued."""

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        manager = self.manager
        if not isinstance(manager, FanoutManager):
            await super()._send_packet(eio_sid, pkt)
            return
        encoded = pkt.encode()
        manager.fan_out((eio_sid,), encoded if isinstance(encoded, list) else [encoded])


class FanoutRedisManager(socketio.AsyncRedisManager, FanoutManager):
    """AsyncRedisManager whose local delivery (emits from this process and from Redis) is FanoutManager's."""


def install(sio: socketio.AsyncServer) -> socketio.AsyncServer:
    """Make the Engine.IO server of `sio` use TrackedWebSocket (a copy of its driver table, not the module's)."""
    eio = sio.eio
    if eio._async.get("websocket") is AsgiWebSocket:
        eio._async = {**eio._async, "websocket": TrackedWebSocket}
    return sio
