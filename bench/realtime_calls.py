"""M simulated phone calls on one worker: Twilio Media Streams in real time ⇄ the relay ⇄ a Realtime server.

Each call streams a 20 ms μ-law frame every 20 ms (Twilio never stops sending, silence included), in 10 groups
staggered across the frame period; Twilio's side echoes each `mark` once the audio before it has played. The
provider (bench/_realtime_load.py, a process of its own, cheap enough to keep up) plays one agent turn per 4 s
of caller audio: 2 s of audio as 20 deltas of 100 ms, 100 ms apart, with transcripts and usage (so the relay also
writes its transcript rows and token usage). Every frame and delta carries its send time, so latency is
measured one way at the far end: caller → relay → provider (`in`) and provider → relay → caller (`out`). It is
the whole path (two loopback hops, the sender's and the receiver's event loops included), so the relay's own
share is at most that.

Per step of M calls, after everyone is connected and 3 s of warm-up, `--realtime-calls-seconds` are measured:
the worker's CPU time (/proc/<pid>/stat: user + system, all threads, SQLite writer included), latency
percentiles, and afterwards frames lost (frames sent vs appended at the provider, once nothing is in flight any
more; deltas sent vs `media` received, unless a barge-in `clear` happened: when an overloaded relay plays replies
late, the next turn's `speech_started` interrupts them and their late deltas are dropped on purpose). A step
passes with no frame lost and p99 under 20 ms both ways. Peer: bench/peers/sdk_realtime_relay.py, the relay as
the public samples write it (the SDK's typed send and event parsing), measured the same way. Floor:
bench/peers/media_stream_floor.py, hypercorn receiving the same frames and doing nothing (the stack's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import harness
from bench._realtime_load import LoadGenerator, percentiles

NAME = "realtime_calls"
DESCRIPTION = "concurrent real-time phone calls through the relay on one worker: frames lost, latency, CPU/call"
AUTH_TOKEN = "bench-twilio-auth-token-0123456789"
ACCOUNT_SID = "AC" + "3" * 32
LIMIT_MS = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--realtime-calls-steps", default="50,100,150,200,250", help="realtime_calls: concurrent calls per step"
    )
    parser.add_argument("--realtime-calls-seconds", type=float, default=10.0, help="realtime_calls: measured s (10)")
    parser.add_argument(
        "--realtime-calls-peer-steps", default="50,100,150", help="realtime_calls: steps for the peer ('' = none)"
    )
    parser.add_argument(
        "--realtime-calls-floor-steps", default="100", help="realtime_calls: steps for the receive-only floor"
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(port: int, reset: bool = False) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/stats" + ("?reset=1" if reset else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


async def _step(
    server: harness.Server,
    fake_port: int,
    url: str,
    calls: int,
    seconds: float,
    database_url: str | None = None,
    **generator: Any,
) -> dict[str, Any]:
    pid = server.worker_pid()
    before = await asyncio.to_thread(_stats, fake_port)
    load = LoadGenerator(url, **generator)
    sids = ["CA" + secrets.token_hex(16) for _ in range(calls)]
    if database_url is not None:  # what the router does for each call before Twilio opens its stream
        await _open_calls(database_url, generator["parameters"]["tenant"], sids)
    await load.connect(calls, call_sids=sids)
    load.start_sending()
    await asyncio.sleep(3.0)
    await asyncio.to_thread(_stats, fake_port, True)
    load.outbound.clear()
    load.late.clear()
    cpu_start, wall_start = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = _cpu_seconds(pid) - cpu_start, time.monotonic() - wall_start
    window = await asyncio.to_thread(_stats, fake_port)
    outbound = percentiles(load.outbound)
    late = percentiles(load.late)
    await load.stop_sending()
    sent = sum(c.sent for c in load.calls)
    # Whatever is still queued somewhere is delivered late, not lost: wait for the counts to settle (the turns
    # in progress finish; nothing new starts without caller audio), at most 60 s.
    stopped = time.monotonic()
    previous: tuple[int, int] | None = None
    while time.monotonic() - stopped < 60:
        await asyncio.sleep(1.5)
        after = await asyncio.to_thread(_stats, fake_port)
        current = (after["appends"], sum(c.media_in for c in load.calls))
        if current == previous and after["appends"] - before["appends"] >= sent:
            break
        if current == previous and time.monotonic() - stopped > 6:
            break
        previous = current
    drained = time.monotonic() - stopped
    received = sum(c.media_in for c in load.calls)
    lost_in = sent - (after["appends"] - before["appends"])
    unplayed = (after["deltas"] - before["deltas"]) - received  # late deltas of items cut by a barge-in are dropped
    clears = sum(c.clears for c in load.calls)
    await load.hangup()
    for _ in range(100):  # the relay closes every provider session with its call
        if (await asyncio.to_thread(_stats, fake_port))["open"] == 0:
            break
        await asyncio.sleep(0.1)
    inbound = window["inbound"]
    busy = cpu / wall
    lost_out = unplayed if clears == 0 else 0  # with clears, dropped deltas are the barge-in working, not a loss
    ok = lost_in == 0 and lost_out == 0 and inbound["p99_ms"] < LIMIT_MS and outbound["p99_ms"] < LIMIT_MS
    return {
        "calls": calls,
        "frames lost in/out": f"{lost_in}/{lost_out}",
        "barge-in clears (deltas dropped)": f"{clears} ({unplayed if clears else 0})",
        "in p50/p99 ms": f"{inbound['p50_ms']}/{inbound['p99_ms']}",
        "out p50/p99 ms": f"{outbound['p50_ms']}/{outbound['p99_ms']}",
        "worker CPU %": round(busy * 100, 1),
        "CPU/call ms/s": round(busy / calls * 1000, 2),
        "calls/core at this load": round(calls / busy) if busy else None,
        "sender late p99 ms": late["p99_ms"],
        "settled after s": round(drained, 1),
        "pass": "yes" if ok else "no",
    }


async def _floor_step(server: harness.Server, url: str, calls: int, seconds: float) -> dict[str, Any]:
    """CPU of the server stack receiving the same frames and doing nothing with them."""
    pid = server.worker_pid()
    load = LoadGenerator(url, auth_token=None, public_url=None, parameters={})
    await load.connect(calls)
    load.start_sending()
    await asyncio.sleep(3.0)
    cpu_start, wall_start = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    busy = (_cpu_seconds(pid) - cpu_start) / (time.monotonic() - wall_start)
    late = percentiles(load.late)
    await load.stop_sending()
    await load.hangup()
    return {
        "calls": calls,
        "worker CPU %": round(busy * 100, 1),
        "CPU/call ms/s": round(busy / calls * 1000, 2),
        "calls/core at this load": round(calls / busy) if busy else None,
        "sender late p99 ms": late["p99_ms"],
    }


def _stop(server: harness.Server) -> None:
    """Stop a server and make sure its worker is gone too (a worker stuck in shutdown must not keep a core)."""
    try:
        pid = server.worker_pid()
    except (AssertionError, OSError):
        pid = None
    server.stop()
    if pid is not None and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _fake(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(harness.ROOT / "bench" / "_realtime_load.py"), "fake", "--port", str(port)],
        stdout=subprocess.PIPE,
        cwd=harness.ROOT,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError("the bench Realtime server did not start")
    return process


async def _tenant(database_url: str) -> str:
    from quart_app.db import tenants
    from quart_app.db.database import connect, open_database

    db = open_database(database_url)
    await connect(db)
    try:
        tenant = await tenants.create_tenant(
            db, name="Bench", instructions="You are a phone agent.", phone_numbers=["+15550009000"]
        )
    finally:
        await db.disconnect()
    return tenant.id


async def _open_calls(database_url: str, tenant_id: str, sids: list[str]) -> None:
    from quart_app.db import calls
    from quart_app.db.database import connect, open_database

    db = open_database(database_url)
    await connect(db)
    try:
        for sid in sids:
            await calls.open_call(
                db, call_sid=sid, tenant_id=tenant_id, from_number="+15550001234", to_number="+15550009000"
            )
    finally:
        await db.disconnect()


def run(args: argparse.Namespace) -> dict[str, Any]:
    steps = [int(s) for s in args.realtime_calls_steps.split(",") if s.strip()]
    peer_steps = [int(s) for s in args.realtime_calls_peer_steps.split(",") if s.strip()]
    floor_steps = [int(s) for s in args.realtime_calls_floor_steps.split(",") if s.strip()]
    # The servers alone on SERVER_CORE; this process (the calls) and the fake Realtime server on LOAD_CORE.
    with harness.load_on_load_core() as pinned, harness.uvloop_policy():
        rows = _run_pinned(args, steps, peer_steps, floor_steps)
    passing = [r["calls"] for r in rows if r["relay"] == "ours" and r["pass"] == "yes"]
    best = max(passing) if passing else 0
    best_row = next((r for r in rows if r["relay"] == "ours" and r["calls"] == best), None)
    notes = (
        f"Most calls on one worker with no frame lost and p99 under {LIMIT_MS:g} ms both ways: **{best}**"
        + (
            f", at {best_row['worker CPU %']} % of a core ({best_row['CPU/call ms/s']} ms CPU per call per second)."
            if best_row
            else "."
        )
        + (
            f" Servers pinned to core {harness.SERVER_CORE}, calls and the fake Realtime server to core "
            f"{harness.LOAD_CORE}."
            if pinned
            else " Not pinned (fewer than 2 cores or no taskset): calls, fake and server share the machine."
        )
        + " The floor row is hypercorn alone receiving the same frames (no relaying): the server stack's own cost."
        + " Latency is the whole one-way path, so it bounds the relay's share from above; `sender late p99` is how "
        "late the load generator itself sent (when large, the load side, not the server, was the limit)."
    )
    return {"rows": rows, "notes": notes}


def _run_pinned(
    args: argparse.Namespace, steps: list[int], peer_steps: list[int], floor_steps: list[int]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    fake_port = harness.free_port()
    fake = _fake(fake_port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            env = harness.clean_env(
                DATABASE_URL=database_url,
                OPENAI_API_KEY="sk-bench",
                OPENAI_REALTIME_URL=f"ws://127.0.0.1:{fake_port}/v1",
                TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                REALTIME_TRANSCRIBE_MODEL="gpt-4o-mini-transcribe",
                REALTIME_HEALTH_LOG_S="3600",
            )
            server = harness.Server(
                "asgi:application", env, Path(tmp) / "ours.log", ready_path="/health", cores=harness.SERVER_CORE
            )
            env["PUBLIC_BASE_URL"] = server.url
            server.start()
            try:
                tenant_id = asyncio.run(_tenant(database_url))
                url = f"ws://127.0.0.1:{server.port}/twilio/media-stream"
                for calls in steps:
                    row = asyncio.run(
                        _step(
                            server,
                            fake_port,
                            url,
                            calls,
                            args.realtime_calls_seconds,
                            database_url,
                            auth_token=AUTH_TOKEN,
                            public_url=url,
                            parameters={"tenant": tenant_id, "caller": "+15550001234", "called": "+15550009000"},
                        )
                    )
                    rows.append({"relay": "ours", **row})
                    print(rows[-1], flush=True)
            finally:
                _stop(server)
            if peer_steps:
                peer_env = harness.clean_env(PEER_REALTIME_URL=f"ws://127.0.0.1:{fake_port}/v1")
                peer = harness.Server(
                    "bench.peers.sdk_realtime_relay:app", peer_env, Path(tmp) / "peer.log", cores=harness.SERVER_CORE
                )
                peer.start()
                try:
                    url = f"ws://127.0.0.1:{peer.port}/media-stream"
                    for calls in peer_steps:
                        row = asyncio.run(
                            _step(
                                peer,
                                fake_port,
                                url,
                                calls,
                                args.realtime_calls_seconds,
                                auth_token=None,
                                public_url=None,
                                parameters={},
                            )
                        )
                        rows.append({"relay": "peer: SDK-typed sample relay", **row})
                        print(rows[-1], flush=True)
                finally:
                    _stop(peer)
            if floor_steps:
                floor = harness.Server(
                    "bench.peers.media_stream_floor:app",
                    harness.clean_env(),
                    Path(tmp) / "floor.log",
                    cores=harness.SERVER_CORE,
                )
                floor.start()
                try:
                    url = f"ws://127.0.0.1:{floor.port}/media-stream"
                    for calls in floor_steps:
                        row = asyncio.run(_floor_step(floor, url, calls, args.realtime_calls_seconds))
                        rows.append({"relay": "floor: hypercorn receive only", **row})
                        print(rows[-1], flush=True)
                finally:
                    _stop(floor)
    finally:
        fake.terminate()
        fake.wait(10)
    return rows
