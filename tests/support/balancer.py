"""A loopback TCP load balancer in front of live instances, as Render's proxy behaves for a rolling deploy or a
crash: each NEW connection goes to the first instance (in the given order) whose `/health` answers 200 right
then; open connections stay where they are until either side closes them. No healthy instance: the connection
is closed at once.

    async with Balancer([server_a.port, server_b.port]) as balancer:
        url = f"ws://127.0.0.1:{balancer.port}/twilio/media-stream"
        balancer.routed   # [(backend port, path of the first request line)], in order
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from types import TracebackType

from tests.support.live_server import free_port

HEALTH_TIMEOUT_S = 2.0
FAST_S = 0.5  # a healthy instance answers /health well within this; a slower one is passed over if another is up


async def healthy(port: int) -> bool:
    """GET /health on 127.0.0.1:port answers 200 within HEALTH_TIMEOUT_S (refused, failing, slow: unhealthy)."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1] == b"200"


class Balancer:
    def __init__(self, backends: Sequence[int]) -> None:
        self.backends = list(backends)
        self.port = free_port()
        self.routed: list[tuple[int, str]] = []
        self.refused = 0
        self.checks: list[tuple[int, bool, float]] = []  # (port, healthy, seconds the check took)
        self.down: set[int] = set()  # backends whose last probe failed or stalled
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()

    def routed_to(self, port: int, path_prefix: str = "") -> int:
        return sum(1 for p, path in self.routed if p == port and path.startswith(path_prefix))

    async def _pick(self) -> int | None:
        """Probe every backend at once; the first in order that answered 200 wins. A backend that has not
        answered within FAST_S while a later one has answered 200 is passed over (and marked down until one of
        its probes answers 200 again): a process that stopped accepting (hypercorn stops at SIGTERM) must not
        hold up new connections for the full HEALTH_TIMEOUT_S."""
        started = time.monotonic()
        probes = {port: asyncio.create_task(self._probe(port, started)) for port in self.backends}
        try:
            while time.monotonic() < started + HEALTH_TIMEOUT_S:
                chosen = self._decide(probes, time.monotonic() - started)
                pending = [p for p in probes.values() if not p.done()]
                if chosen is not None or not pending:
                    return chosen
                await asyncio.wait(pending, timeout=0.02, return_when=asyncio.FIRST_COMPLETED)
            return None
        finally:
            for port, probe in probes.items():
                if not probe.done():
                    self.down.add(port)  # still probing in the background: it revives when it answers 200

    def _decide(self, probes: dict[int, asyncio.Task[bool]], elapsed: float) -> int | None:
        """The backend to use now, or None (undecided, or nothing healthy once every probe is done)."""
        for index, port in enumerate(self.backends):
            probe = probes[port]
            if probe.done():
                if probe.result():
                    return port
                continue  # unhealthy: the next in order
            # still probing: wait for it, unless it is slow (or known down) and a later backend is healthy
            if elapsed < FAST_S and port not in self.down:
                return None
            later = [p for p in self.backends[index + 1 :] if probes[p].done() and probes[p].result()]
            return later[0] if later else None
        return None

    async def _probe(self, port: int, started: float) -> bool:
        ok = await healthy(port)
        self.checks.append((port, ok, time.monotonic() - started))
        if ok:
            self.down.discard(port)
        else:
            self.down.add(port)
        return ok

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = await self._pick()
        if port is None:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        first = _FirstLine()
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, first, port)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first: _FirstLine | None = None,
        port: int = 0,
    ) -> None:
        aborted = False
        try:
            while data := await reader.read(65536):
                if first is not None and not first.seen:
                    first.seen = True
                    line = data.split(b"\r\n", 1)[0].split()
                    self.routed.append((port, line[1].decode(errors="replace") if len(line) > 1 else ""))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            aborted = True  # a reset (e.g. the instance was killed): pass it on as a reset
        finally:
            self._writers.discard(writer)
            if aborted:
                writer.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    writer.close()


class _FirstLine:
    seen = False
