"""Load generator for bench/capacity.py: many raw Engine.IO 4 / Socket.IO 5 clients over the websocket transport.

    python bench/_sio_load.py CONFIG_JSON        (prints one JSON object with the results on stdout)

One asyncio.Protocol per connection, no client library: the HTTP upgrade, RFC 6455 framing (client frames
masked with a zero key, which servers must accept), Engine.IO open/ping/pong and the Socket.IO connect,
event and ack packets are parsed by hand, so one process on one core can hold 10 000 connections and still
time 1000 acks a second. Sources rotate over 127.0.0.2-127.0.0.250 so repeated runs never run out of
ephemeral ports (TIME_WAIT), and the process raises its own open-file limit.

CONFIG_JSON: {"host", "port", "pids": [server pids to read CPU and RSS from], "levels": [100, 1000, ...],
"echo_event", "echo_payload", "echo_rate", "echo_seconds", "broadcasts", "connect_concurrency",
"broadcast_timeout", "settle_s", "idle_s"}. For each level it connects the missing clients, lets the server
settle, then measures RSS, the server's CPU while it only holds them (`idle_s`), echo round trips at
`echo_rate` spread round-robin over every client, the server's CPU per echo, and `broadcasts` broadcasts
(trigger sent by client 0; time until the last of the N clients has the packet).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
now = time.perf_counter


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


class Load:
    """Shared state of every connection of this process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.host = config["host"]
        self.port = int(config["port"])
        self.echo_event = config.get("echo_event", "echo")
        self.conns: list[Conn] = []
        self.latencies: list[float] = []
        self.outstanding = 0
        self.bcast_prefix = b'42["broadcast"'
        self.bcast_times: list[float] = []
        self.bcast_expected = 0
        self.bcast_done: asyncio.Future[None] | None = None
        self.errors: dict[str, int] = {}
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame; the mask key is zero, so the payload goes out as it is."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Conn(asyncio.Protocol):
    __slots__ = ("load", "transport", "buf", "upgraded", "ready", "acks", "next_id", "closed")

    def __init__(self, load: Load, ready: asyncio.Future[None]) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.ready = ready
        self.acks: dict[int, float] = {}
        self.next_id = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.load.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during handshake"))
        elif self.acks:
            self.load.error("closed with acks pending")

    def send(self, text: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(frame(text))

    def emit(self, event: str, payload: Any, ack: bool) -> None:
        body = json.dumps([event, payload], separators=(",", ":")).encode()
        if ack:
            self.next_id += 1
            self.acks[self.next_id] = now()
            self.load.outstanding += 1
            self.send(b"42" + str(self.next_id).encode() + body)
        else:
            self.send(b"42" + body)

    def data_received(self, data: bytes) -> None:
        at = now()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.load.error(f"upgrade {status!r}")
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                return
            self.upgraded = True
        while len(buf) >= 2:
            b1 = buf[1] & 0x7F
            offset = 2
            if b1 == 126:
                if len(buf) < 4:
                    return
                b1, offset = int.from_bytes(buf[2:4], "big"), 4
            elif b1 == 127:
                if len(buf) < 10:
                    return
                b1, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + b1:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[offset : offset + b1])
            del buf[: offset + b1]
            if opcode == 1:
                self.packet(payload, at)
            elif opcode == 9:  # websocket ping
                self.transport.write(frame(payload, 10))  # type: ignore[union-attr]
            elif opcode == 8:
                self.closed = True
                self.transport.close()  # type: ignore[union-attr]
                return

    def packet(self, p: bytes, at: float) -> None:
        kind = p[:1]
        if kind == b"4":  # Engine.IO message: a Socket.IO packet
            sio = p[1:2]
            if sio == b"2":
                if p.startswith(self.load.bcast_prefix):
                    load = self.load
                    load.bcast_times.append(at)
                    if len(load.bcast_times) >= load.bcast_expected and load.bcast_done and not load.bcast_done.done():
                        load.bcast_done.set_result(None)
            elif sio == b"3":
                end = p.index(b"[", 2)
                started = self.acks.pop(int(p[2:end]), None)
                if started is not None:
                    self.load.latencies.append(at - started)
                    self.load.outstanding -= 1
            elif sio == b"0":
                if not self.ready.done():
                    self.ready.set_result(None)
            elif sio == b"4":
                self.load.error("connect_error")
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(p.decode(errors="replace")))
        elif kind == b"2":  # Engine.IO ping: answer pong
            self.send(b"3")
        elif kind == b"0":  # Engine.IO open: join the root namespace
            self.send(b"40")


async def connect_more(load: Load, target: int, concurrency: int) -> dict[str, Any]:
    """Connect clients until `target` are open; per-connection handshake times (TCP → Socket.IO connected)."""
    loop = asyncio.get_running_loop()
    times: list[float] = []
    failures = 0
    queue = list(range(len(load.conns), target))
    started = now()
    cpu0 = self_cpu()

    async def one(index: int) -> None:
        nonlocal failures
        ready: asyncio.Future[None] = loop.create_future()
        t0 = now()
        source = f"127.0.0.{2 + index % 249}"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Conn(load, ready), load.host, load.port, local_addr=(source, 0)),
                30,
            )
            await asyncio.wait_for(ready, 30)
        except (OSError, TimeoutError, ConnectionError) as exc:
            failures += 1
            load.error(f"connect: {type(exc).__name__}")
            return
        times.append(now() - t0)
        load.conns.append(conn)

    async def worker() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(queue))))))
    wall = now() - started
    return {
        "connected": len(times),
        "failed": failures,
        "connect_wall_s": wall,
        "connect_rate": len(times) / wall if wall else 0.0,
        "connect_p50_ms": pct(times, 50) * 1000 if times else None,
        "connect_p99_ms": pct(times, 99) * 1000 if times else None,
        "load_cpu_connect": (self_cpu() - cpu0) / wall if wall else 0.0,
    }


async def echo(load: Load, pids: list[int], rate: float, seconds: float) -> dict[str, Any]:
    """`rate` acked events a second for `seconds`, round-robin over every client; then wait for the stragglers."""
    conns = [c for c in load.conns if not c.closed]
    if not conns:
        return {}
    payload = load.config.get("echo_payload", {"seq": 0})
    load.latencies = []
    load.outstanding = 0
    total = int(rate * seconds)
    sent = 0
    server0 = sum(cpu_seconds(p) for p in pids)
    cpu0 = self_cpu()
    started = now()
    i = 0
    while sent < total:
        due = min(total, int((now() - started) * rate) + 1)
        while sent < due:
            conns[i % len(conns)].emit(load.echo_event, payload, ack=True)
            i += 1
            sent += 1
        await asyncio.sleep(0.002)
    send_wall = now() - started
    deadline = now() + 10
    for _ in range(2000):  # the stragglers, for up to 10 s
        if load.outstanding <= 0 or now() > deadline:
            break
        await asyncio.sleep(0.01)
    wall = now() - started
    server_cpu = sum(cpu_seconds(p) for p in pids) - server0
    lat = [x * 1000 for x in load.latencies]
    return {
        "echo_sent": sent,
        "echo_answered": len(lat),
        "echo_rate_achieved": sent / send_wall if send_wall else 0.0,
        "echo_p50_ms": pct(lat, 50) if lat else None,
        "echo_p99_ms": pct(lat, 99) if lat else None,
        "echo_max_ms": max(lat) if lat else None,
        "server_cpu_per_echo_ms": server_cpu / len(lat) * 1000 if lat else None,
        "server_cpu_echo": server_cpu / wall if wall else 0.0,
        "load_cpu_echo": (self_cpu() - cpu0) / wall if wall else 0.0,
    }


async def broadcast(load: Load, pids: list[int], rounds: int, limit_s: float) -> dict[str, Any]:
    """`rounds` broadcasts triggered by client 0; time from the trigger until the last client received it."""
    conns = [c for c in load.conns if not c.closed]
    if not conns or rounds <= 0:
        return {}
    loop = asyncio.get_running_loop()
    lasts: list[float] = []
    medians: list[float] = []
    received: list[int] = []
    server_cpu = 0.0
    load_cpu = 0.0
    for k in range(rounds):
        load.bcast_times = []
        load.bcast_expected = len(conns)
        load.bcast_done = loop.create_future()
        s0, c0 = sum(cpu_seconds(p) for p in pids), self_cpu()
        t0 = now()
        conns[0].emit("broadcast", {"seq": k, "instance": "bench", "version": "capacity"}, ack=False)
        try:
            await asyncio.wait_for(load.bcast_done, limit_s)
        except TimeoutError:
            load.error("broadcast incomplete")
        server_cpu += sum(cpu_seconds(p) for p in pids) - s0
        load_cpu += self_cpu() - c0
        times = load.bcast_times
        received.append(len(times))
        if times:
            lasts.append((max(times) - t0) * 1000)
            medians.append((statistics.median(times) - t0) * 1000)
        await asyncio.sleep(0.3)
    recipients = sum(received)
    return {
        "bcast_last_ms": statistics.median(lasts) if lasts else None,
        "bcast_last_min_ms": min(lasts) if lasts else None,
        "bcast_median_client_ms": statistics.median(medians) if medians else None,
        "bcast_received": min(received) if received else 0,
        "bcast_expected": len(conns),
        # CPU seconds per recipient; includes the 0.3 s pauses' idle cost, negligible next to the sends
        "server_cpu_per_recipient_us": server_cpu / recipients * 1e6 if recipients else None,
        "load_cpu_per_recipient_us": load_cpu / recipients * 1e6 if recipients else None,
    }


async def main(config: dict[str, Any]) -> dict[str, Any]:
    load = Load(config)
    pids = [int(p) for p in config["pids"]]
    results: list[dict[str, Any]] = []
    gc.collect()
    gc.freeze()  # the clients' objects never need collecting; keep the collector out of the timings
    idle = sum(rss_bytes(p) for p in pids)
    for level in config["levels"]:
        row: dict[str, Any] = {"clients": level}
        row.update(await connect_more(load, level, int(config.get("connect_concurrency", 64))))
        await asyncio.sleep(float(config.get("settle_s", 1.0)))
        held = sum(rss_bytes(p) for p in pids)
        row["idle_rss"] = idle
        row["rss"] = held
        row["rss_per_conn"] = (held - idle) / max(1, len(load.conns))
        idle_s = float(config.get("idle_s", 3.0))  # the server's CPU just holding N clients (pings, timers)
        cpu0 = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(idle_s)
        row["server_cpu_idle"] = (sum(cpu_seconds(p) for p in pids) - cpu0) / idle_s
        row.update(await echo(load, pids, float(config["echo_rate"]), float(config["echo_seconds"])))
        row.update(await broadcast(load, pids, int(config["broadcasts"]), float(config.get("broadcast_timeout", 30))))
        row["errors"] = dict(load.errors)
        load.errors.clear()
        results.append(row)
        print(json.dumps({"progress": row}), file=sys.stderr, flush=True)
    for conn in load.conns:
        if conn.transport is not None:
            conn.transport.abort()
    return {"levels": results}


if __name__ == "__main__":
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    cfg = json.loads(sys.argv[1])
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    print(json.dumps(runner(main(cfg))))
