"""Shared machinery for benchmarks (and tests/perf): hypercorn servers, RSS sampling, a big WAV, API keys.

Nothing here is a benchmark itself: it has no NAME, so `bench/run.py` skips it.

Memory is read from /proc/<pid>/status of the hypercorn *worker* process (hypercorn with `workers = 1`
still forks one worker; the master only supervises). VmRSS is resident memory now, VmHWM its
high-water mark. Writing "5" to /proc/<pid>/clear_refs resets VmHWM to the current RSS, so a peak can
be measured for one request after a warm-up instead of since process start.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
# Servers run on one core and load generators (and fakes) on the other, so a saturated client can't
# steal the measured server's CPU; `bench/capacity.py` and the real-time benchmarks share this split.
SERVER_CORE, LOAD_CORE = "0", "1"

# ------------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no developer provider keys or DATABASE_URL leak into a measured server."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"PYTHONUNBUFFERED": "1", "APP_ENV": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text"})
    env.update(extra)
    return env


class Server:
    """`hypercorn --config hypercorn.toml <app>` on a free loopback port, run from the repo root.

    Every server, ours or a peer, uses the same hypercorn config so only the application differs.
    """

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        log_path: Path,
        ready_path: str = "/health/live",
        cores: str | None = None,
    ) -> None:
        self.app = app
        self.env = env
        self.log_path = log_path
        self.ready_path = ready_path
        self.cores = cores if cores is not None and can_pin() else None  # `taskset -c <cores>`, e.g. SERVER_CORE
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        pin = ["taskset", "-c", self.cores] if self.cores else []
        self.proc = subprocess.Popen(
            [
                *pin,
                sys.executable,
                "-m",
                "hypercorn",
                "--config",
                "hypercorn.toml",
                "--bind",
                f"127.0.0.1:{self.port}",
                self.app,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.app} not up in {timeout}s:\n{self.output()}")

    def worker_pid(self) -> int:
        assert self.proc is not None
        return worker_pid(self.proc.pid)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The cores this process may use as it started: inside `load_on_load_core()` its own affinity is one core,
# which must not make a server started from there think the machine has only one.
MACHINE_CORES = frozenset(os.sched_getaffinity(0))


def can_pin() -> bool:
    """Both cores there and `taskset` present: servers and load can be kept apart."""
    wanted = {int(SERVER_CORE), int(LOAD_CORE)}
    return wanted <= MACHINE_CORES and shutil.which("taskset") is not None


@contextmanager
def load_on_load_core() -> Iterator[bool]:
    """Run this process (the load generator) and every child it starts meanwhile on LOAD_CORE.

    Linux applies the affinity to the calling thread and children forked after it inherit it; the previous
    affinity comes back on exit. Yields whether pinning happened (not on a one-core machine).
    """
    before = os.sched_getaffinity(0)
    if not can_pin():
        yield False
        return
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    try:
        yield True
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def uvloop_policy() -> Iterator[bool]:
    """`asyncio.run` on uvloop meanwhile (the servers run on it: hypercorn.toml), the previous policy after.

    Load generators and fakes written in Python must cost less than the server they measure, or their own
    lateness becomes the figure. Yields whether uvloop was available.
    """
    try:
        import uvloop
    except ImportError:
        yield False
        return
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield True
    finally:
        asyncio.set_event_loop_policy(before)


def worker_pid(master_pid: int, timeout: float = 10.0) -> int:
    """The hypercorn worker under `master_pid`: its spawned child that is not multiprocessing's resource tracker.

    With `workers = 0` hypercorn serves in the master itself, which is then the answer.
    """
    deadline = time.monotonic() + timeout
    while True:
        for child in _children(master_pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                return child
        if time.monotonic() > deadline:
            return master_pid
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            pass
    return found


# -------------------------------------------------------------------------------------------- memory


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024  # the kernel reports kB
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS; False when the kernel or permissions do not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return proc_status(pid)["VmHWM"] <= proc_status(pid)["VmRSS"] + MB


@dataclass
class RssSampler:
    """Samples VmRSS of `pid` every `interval` seconds in a daemon thread while the `with` block runs.

    `peak` is the larger of the highest sample and the kernel's VmHWM (which also catches spikes between
    samples); `baseline` is VmRSS on entry. When VmHWM cannot be reset, only samples count, since the
    old high-water mark may come from before the measured interval.
    """

    pid: int
    interval: float = 0.005
    baseline: int = 0
    max_sampled: int = 0
    hwm: int = 0
    hwm_valid: bool = False
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.hwm_valid = reset_peak(self.pid)
        self.baseline = proc_status(self.pid)["VmRSS"]
        self.max_sampled = self.baseline
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.hwm = proc_status(self.pid)["VmHWM"]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = proc_status(self.pid)["VmRSS"]
            except FileNotFoundError:
                return
            self.samples += 1
            self.max_sampled = max(self.max_sampled, rss)

    @property
    def peak(self) -> int:
        return max(self.max_sampled, self.hwm) if self.hwm_valid else self.max_sampled

    @property
    def increase(self) -> int:
        return self.peak - self.baseline


# --------------------------------------------------------------------------------------------- audio


def big_wav(size_mb: int, directory: Path | None = None, sample_rate: int = 16000) -> Path:
    """A valid mono 16-bit PCM WAV: a 44-byte header plus `size_mb` MiB of generated noise, written in
    1 MiB blocks (never held whole in memory). Reused when a file of the right size already exists."""
    directory = directory or Path(tempfile.gettempdir())
    path = directory / f"bench-{size_mb}mb-{sample_rate}hz.wav"
    data_bytes = size_mb * MB
    if path.exists() and path.stat().st_size == 44 + data_bytes:
        return path
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    rng = random.Random(1234)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        out.write(header)
        for _ in range(size_mb):
            out.write(rng.randbytes(MB))
    partial.rename(path)
    return path


def post_file(
    url: str, path: Path, *, headers: dict[str, str] | None = None, field_name: str = "audio", timeout: float = 120.0
) -> tuple[httpx.Response, float]:
    """POST `path` as multipart field `field_name`; httpx streams the file from disk in 64 KiB reads and
    sends a Content-Length. Returns the response and wall seconds."""
    with open(path, "rb") as handle, httpx.Client(timeout=timeout) as client:
        started = time.perf_counter()
        response = client.post(url, headers=headers or {}, files={field_name: (path.name, handle, "audio/wav")})
        return response, time.perf_counter() - started


# ------------------------------------------------------------------------------------- fakes and keys


def big_fake_deepgram(api_key: str = "bench-deepgram-key"):  # type: ignore[no-untyped-def]
    """A FakeDeepgram whose aiohttp app accepts bodies beyond the fakes' 64 MiB default (the real API
    takes up to 2 GB), so a 100 MB forward is transcribed instead of rejected."""
    from aiohttp import web

    from fakes import FakeDeepgram

    class BigFakeDeepgram(FakeDeepgram):
        def make_app(self) -> web.Application:
            app = web.Application(client_max_size=2048 * MB, middlewares=[self._middleware])
            app.add_routes(self.routes())
            return app

    return BigFakeDeepgram(api_key=api_key)


@contextmanager
def deepgram_fake() -> Iterator[object]:
    """A big-body FakeDeepgram served from a thread of this process; yields the fake (`.base_url`)."""
    from fakes import FakeServerThread

    with FakeServerThread(big_fake_deepgram()) as fake:
        yield fake


async def create_api_key_async(database_url: str, email: str | None = None) -> str:
    """Migrate `database_url`, create a user there and return a new plaintext API key for it.

    This goes through the same query functions as `scripts/init_db.py --safe` + `test-user` (migrations,
    users.create_user, api_keys.create_api_key) but in-process: the CLI is currently broken on SQLite
    (see bench/README.md), and a benchmark should not depend on its output format.
    """
    from quart_app.db import api_keys, migrations, users
    from quart_app.db.database import connect, open_database
    from quart_app.settings import Settings

    db = open_database(Settings.from_env({"DATABASE_URL": database_url}).database_url)
    await connect(db)
    try:
        await migrations.upgrade(db)
        user = await users.create_user(db, email=email or f"bench-{secrets.token_hex(4)}@example.test", role="user")
        _, key = await api_keys.create_api_key(db, user.id, "bench")
        return key
    finally:
        await db.disconnect()


def create_api_key(database_url: str, email: str | None = None) -> str:
    """Synchronous `create_api_key_async`, for callers without a running event loop."""
    return asyncio.run(create_api_key_async(database_url, email))


# ---------------------------------------------------------------------------------------- formatting


def mb(n_bytes: float) -> float:
    return round(n_bytes / MB, 1)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (non-empty)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
