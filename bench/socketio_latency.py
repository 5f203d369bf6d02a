"""Socket.IO ack round trips (`ping_server`) over the websocket transport: ours vs a bare python-socketio app.

Client: python-socketio AsyncClient in this process, websocket transport only, anonymous handshake.
Sequential: one client, `--latency-n` calls one after another (after 20 warm-up calls).
Concurrent: `--latency-clients` clients connected at once, each making `--latency-per-client` sequential
calls, all clients in parallel; latency is per call, throughput is calls per wall second.
Client and server share the machine's cores, so absolute numbers include the client's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import socketio

from bench import harness

NAME = "socketio_latency"
DESCRIPTION = "ping_server ack round trips over Socket.IO websocket: p50/p95/p99, 1 client and N concurrent"
WARMUP = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency-n", type=int, default=500, help="socketio_latency: sequential calls (500)")
    parser.add_argument("--latency-clients", type=int, default=50, help="socketio_latency: concurrent clients (50)")
    parser.add_argument(
        "--latency-per-client", type=int, default=20, help="socketio_latency: calls per concurrent client (20)"
    )


async def _connect(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


async def _round_trips(client: socketio.AsyncClient, count: int) -> list[float]:
    """Seconds per `ping_server` ack, `count` calls in sequence."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        reply = await client.call("ping_server", {}, timeout=10)
        times.append(time.perf_counter() - started)
        assert "server_time" in reply, reply
    return times


def _row(mode: str, times: list[float], wall: float) -> dict[str, object]:
    ms = [t * 1000 for t in times]
    return {
        "mode": mode,
        "calls": len(ms),
        "p50 (ms)": round(harness.percentile(ms, 50), 2),
        "p95 (ms)": round(harness.percentile(ms, 95), 2),
        "p99 (ms)": round(harness.percentile(ms, 99), 2),
        "max (ms)": round(max(ms), 2),
        "calls/s": round(len(ms) / wall),
    }


async def measure(url: str, n: int, clients: int, per_client: int) -> list[dict[str, object]]:
    single = await _connect(url)
    try:
        await _round_trips(single, WARMUP)
        started = time.perf_counter()
        times = await _round_trips(single, n)
        rows = [_row("sequential, 1 client", times, time.perf_counter() - started)]
    finally:
        await single.disconnect()

    many = await asyncio.gather(*(_connect(url) for _ in range(clients)))
    try:
        await asyncio.gather(*(_round_trips(c, 2) for c in many))  # warm every connection
        started = time.perf_counter()
        batches = await asyncio.gather(*(_round_trips(c, per_client) for c in many))
        wall = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.disconnect() for c in many))
    rows.append(_row(f"concurrent, {clients} clients", [t for b in batches for t in b], wall))
    return rows


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    n, clients = getattr(args, "latency_n", 500), getattr(args, "latency_clients", 50)
    per_client = getattr(args, "latency_per_client", 20)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-sio-") as tmp_name:
        tmp = Path(tmp_name)
        servers = [
            (
                "ours (asgi:application)",
                "asgi:application",
                {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db"},
                "/health/live",
            ),
            ("peer: bare python-socketio", "bench.peers.bare_socketio:app", {}, "/socket.io/?EIO=4&transport=polling"),
        ]
        for label, app, env, ready in servers:
            with harness.Server(app, harness.clean_env(**env), tmp / f"{len(rows)}.log", ready_path=ready) as server:
                for row in asyncio.run(measure(server.url, n, clients, per_client)):
                    rows.append({"server": label, **row})
    return rows
