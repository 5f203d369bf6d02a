"""N concurrent live streams on one worker, each sending 20 ms linear16 chunks in real time: ours vs a bare forwarder.

Both servers speak to the same FakeDeepgram live endpoint, run in a process of its own with cheap ears
(bench/_live_fake.py: one final word per second of audio instead of Python DSP, so the fake keeps up), and
both are wrapped in bench/_lag_probe.py, which samples the worker's event-loop lag every 10 ms and its CPU
time. Clients: aiohttp WebSockets in this process, on the plain WebSocket `/audio-stream` (ours, API key,
`connected`/`start`/`stop`) or the peer's minimal protocol; streams send on a fixed schedule in 10 groups
staggered across the chunk period, so the load is spread as real clients' would be.

Per server: worker RSS before connecting and with every stream open (-> per stream); after all `started`,
`--live-streams-seconds` of real-time audio, during which the probe measures loop lag and worker CPU
(-> CPU per forwarded chunk, i.e. forwarding overhead); result latency (a chunk completing a second of audio
sent -> its final result back at the client); then `stop` on every stream and the fake's byte counts per
connection (-> chunks lost). `client late p99` says whether this process kept the real-time schedule: when
it is large, the machine (2 cores shared by client, server and fake) was the limit, not the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness

NAME = "live_streams"
DESCRIPTION = "concurrent real-time live streams over the plain WebSocket: loop lag, CPU/chunk, RSS/stream, drops"
GROUPS = 10
CONNECT_BATCH = 50
STOP_WAIT_S = 600.0  # a saturated server may need minutes to forward its backlog before answering `stop`
FAKE_KEY = "bench-deepgram-key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live-streams-n", type=int, default=500, help="live_streams: concurrent streams (500)")
    parser.add_argument(
        "--live-streams-seconds", type=float, default=20.0, help="live_streams: seconds of real-time audio (20)"
    )


@dataclass
class Stream:
    ws: aiohttp.ClientWebSocketResponse
    ours: bool
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    second_sent: list[float] = field(default_factory=list)  # when each full second of audio was sent
    sent_bytes: int = 0
    reader: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            body = json.loads(message.data)
            self.events.append((time.perf_counter(), body.get("type", ""), body))
            self.changed.set()

    async def wait_for(self, kind: str, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while not any(k == kind for _, k, _ in self.events):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r}; got {[k for _, k, _ in self.events][-5:]}")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass

    def result_latencies(self) -> list[float]:
        final = "transcript" if self.ours else "Results"
        arrivals = [t for t, kind, body in self.events if kind == final and body.get("is_final")]
        return [got - sent for sent, got in zip(self.second_sent, arrivals, strict=False)]

    def errors(self) -> list[str]:
        return [body.get("code", "?") for _, kind, body in self.events if kind == "error"]


async def _open(session: aiohttp.ClientSession, url: str, key: str | None) -> Stream:
    headers = {"x-api-key": key} if key else {}
    ws = await session.ws_connect(
        url, headers=headers, max_msg_size=0, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=10)
    )
    stream = Stream(ws, ours=key is not None)
    stream.reader = asyncio.create_task(stream.read())
    if stream.ours:
        await stream.wait_for("connected")
    await ws.send_str(json.dumps({"type": "start", "encoding": "linear16", "sample_rate": 16000}))
    await stream.wait_for("started")
    return stream


async def _send_group(streams: list[Stream], start: float, chunks: int, chunk_s: float, late: list[float]) -> None:
    chunk = bytes(640)  # 20 ms of 16 kHz linear16 (silence: the bench fake does not listen)
    per_second = round(1 / chunk_s)
    loop = asyncio.get_running_loop()
    for index in range(chunks):
        due = start + index * chunk_s
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, loop.time() - due))
        for stream in streams:
            await stream.ws.send_bytes(chunk)
            stream.sent_bytes += len(chunk)
            if (index + 1) % per_second == 0:
                stream.second_sent.append(time.perf_counter())


async def _upstream_bytes(http: aiohttp.ClientSession, fake_url: str) -> int:
    """Audio bytes the fake has received so far, over every connection."""
    return sum(r["bytes"] for r in await (await http.get(fake_url + "/__bench/live")).json())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    server: harness.Server, fake_url: str, fake_pid: int, key: str | None, n: int, seconds: float
) -> dict[str, Any]:
    ours = key is not None
    pid = server.worker_pid()
    chunk_s = 0.02
    chunks = int(seconds / chunk_s)
    url = server.url.replace("http", "ws", 1) + ("/audio-stream" if ours else "/")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await http.post(fake_url + "/__bench/reset")
        baseline = harness.proc_status(pid)["VmRSS"]
        streams: list[Stream] = []
        opened = time.perf_counter()
        for at in range(0, n, CONNECT_BATCH):
            streams += await asyncio.gather(*(_open(http, url, key) for _ in range(min(CONNECT_BATCH, n - at))))
        open_s = time.perf_counter() - opened
        await asyncio.sleep(1.0)  # let allocations settle before reading RSS
        with_streams = harness.proc_status(pid)["VmRSS"]
        await http.get(server.url + "/__bench/lag?reset=1")

        late: list[float] = []
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        upstream_before = await _upstream_bytes(http, fake_url)
        fake_cpu, client_cpu, window = _cpu_seconds(fake_pid), time.process_time(), time.perf_counter()
        await asyncio.gather(
            *(
                _send_group(streams[g::GROUPS], start + g * chunk_s / GROUPS, chunks, chunk_s, late)
                for g in range(GROUPS)
            )
        )
        lag = await (await http.get(server.url + "/__bench/lag")).json()
        window = time.perf_counter() - window
        upstream_then = await _upstream_bytes(http, fake_url)
        fake_cpu = _cpu_seconds(fake_pid) - fake_cpu
        client_cpu = time.process_time() - client_cpu
        after = harness.proc_status(pid)["VmRSS"]

        sent_all = time.perf_counter()
        for stream in streams:
            await stream.ws.send_str(json.dumps({"type": "stop"}))
        stops = await asyncio.gather(*(s.wait_for("stopped", STOP_WAIT_S) for s in streams), return_exceptions=True)
        unstopped = sum(1 for outcome in stops if isinstance(outcome, BaseException))
        caught_up_s = time.perf_counter() - sent_all
        for stream in streams:
            await stream.ws.close()
        received = await (await http.get(fake_url + "/__bench/live")).json()

    forwarded = n * chunks
    upstream_bytes = sum(r["bytes"] for r in received if r["status"] == 101)
    sent_bytes = sum(s.sent_bytes for s in streams)
    latencies = [x * 1000 for s in streams for x in s.result_latencies()]
    errors = [code for s in streams for code in s.errors()]
    late_ms = [x * 1000 for x in late]
    return {
        "streams": n,
        "connect all (s)": round(open_s, 1),
        "loop lag p50 (ms)": lag["p50_ms"],
        "loop lag p99 (ms)": lag["p99_ms"],
        "loop lag max (ms)": lag["max_ms"],
        "CPU/chunk (µs)": round(lag["cpu_s"] / max(1, (upstream_then - upstream_before) / 640) * 1e6, 1),
        "CPU % worker / fake / clients": (
            f"{lag['cpu_s'] / window:.0%} / {fake_cpu / window:.0%} / {client_cpu / window:.0%}"
        ),
        "result latency p50/p99 (ms)": (
            f"{harness.percentile(latencies, 50):.1f} / {harness.percentile(latencies, 99):.1f}" if latencies else "-"
        ),
        "RSS/stream (KiB)": round((with_streams - baseline) / n / 1024, 1),
        "RSS after (MiB)": harness.mb(after),
        "chunks sent": forwarded,
        "in flight at end (chunks)": round((sent_bytes - upstream_then) / 640),
        "chunks lost": round((sent_bytes - upstream_bytes) / 640),
        "errors": len(errors),
        "no `stopped` (of n)": unstopped,
        "stop → all stopped (s)": round(caught_up_s, 1),
        "client late p99 (ms)": round(harness.percentile(late_ms, 99), 1) if late_ms else 0.0,
    }


def _start_fake(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = harness.free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._live_fake", "--port", str(port), "--api-key", FAKE_KEY],
        cwd=harness.ROOT,
        env=harness.clean_env(),
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"bench fake did not start: {line!r}\n{log_path.read_text(errors='replace')[-2000:]}")
    return proc, line.split(" ", 1)[1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = getattr(args, "live_streams_n", 500)
    seconds = getattr(args, "live_streams_seconds", 20.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8 * n + 1024)), hard))
    rows: list[dict[str, Any]] = []
    # The server alone on SERVER_CORE; this process (the clients) and the fake share LOAD_CORE.
    with (
        harness.load_on_load_core() as pinned,
        harness.uvloop_policy(),
        tempfile.TemporaryDirectory(prefix="bench-live-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        fake, fake_url = _start_fake(tmp / "fake.log")
        try:
            database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            key = harness.create_api_key(database_url)
            ours_env = harness.clean_env(
                LAG_PROBE_APP="asgi:application",
                DATABASE_URL=database_url,
                DEEPGRAM_API_KEY=FAKE_KEY,
                DEEPGRAM_BASE_URL=fake_url,
                STREAM_MAX_PER_USER=str(n + 10),
                STREAM_STARTS_PER_MINUTE="100000",
            )
            peer_env = harness.clean_env(
                LAG_PROBE_APP="bench.peers.live_forwarder:app", DEEPGRAM_API_KEY=FAKE_KEY, DEEPGRAM_BASE_URL=fake_url
            )
            servers = [
                ("ours (plain WebSocket /audio-stream)", ours_env, key, "/health"),
                ("peer: bare ASGI forwarder", peer_env, None, "/__bench/lag"),
            ]
            for label, env, api_key, ready in servers:
                log_path = tmp / f"{len(rows)}.log"
                with harness.Server(
                    "bench._lag_probe:app", env, log_path, ready_path=ready, cores=harness.SERVER_CORE
                ) as server:
                    result = asyncio.run(measure(server, fake_url, fake.pid, api_key, n, seconds))
                    rows.append({"server": label, **result})
        finally:
            fake.terminate()
            fake.wait(10)
    notes = (
        f"{n} streams x {seconds:g} s of 20 ms chunks (640 B) on one worker; "
        + (
            f"server pinned to core {harness.SERVER_CORE}, clients and fake to core {harness.LOAD_CORE}. "
            if pinned
            else "not pinned (fewer than 2 cores or no taskset): clients, fake and server share the machine. "
        )
        + "CPU/chunk = worker CPU time during the streaming window / chunks the fake received "
        "in that window (so it includes relaying the one-per-second results and, for ours, saving text every "
        "STREAM_FLUSH_S). In flight = chunks the clients had sent but the fake had not received when the clients "
        "finished; chunks lost = bytes sent by clients minus bytes the fake received in the end, in chunks. Loop "
        "lag = how late a 10 ms sleep in the worker wakes up."
    )
    return {"rows": rows, "notes": notes}
