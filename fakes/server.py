"""Running a fake on a free loopback port: in the current loop, or in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from aiohttp import web

from fakes.base import FakeService

F = TypeVar("F", bound=FakeService)

# Handlers held by hang_next() must not keep shutdown waiting for the full injected delay.
SHUTDOWN_TIMEOUT = 0.5


async def start_fake(fake: FakeService, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Serve `fake` and set `fake.base_url` (no trailing slash); the caller must `await runner.cleanup()`."""
    runner = web.AppRunner(
        fake.make_app(),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handler_cancellation=True,
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    fake.base_url = f"http://{host}:{bound_port}"
    return runner


@asynccontextmanager
async def run_fake(fake: F, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[F]:
    """`async with run_fake(FakeOpenAI()) as fake:` serves it in this loop until the block ends."""
    runner = await start_fake(fake, host, port)
    try:
        yield fake
    finally:
        await runner.cleanup()


class FakeServerThread:
    """Serve a fake from a daemon thread with its own loop, for sync tests and subprocess-based services.

    `with FakeServerThread(FakeDeepgram()) as fake: env["DEEPGRAM_BASE_URL"] = fake.base_url`
    Several fakes may share one thread: `FakeServerThread(auth0, openai)`; entering yields the first.
    """

    def __init__(self, *fakes: FakeService, host: str = "127.0.0.1", ports: tuple[int, ...] | None = None) -> None:
        if not fakes:
            raise ValueError("FakeServerThread needs at least one fake")
        self.fakes = fakes
        self.host = host
        self.ports = ports or tuple(0 for _ in fakes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runners: list[web.AppRunner] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> FakeServerThread:
        self._thread = threading.Thread(target=self._run, name="fake-servers", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake servers did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("fake servers failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._cleanup(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeService:
        self.start()
        return self.fakes[0]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            for fake, port in zip(self.fakes, self.ports, strict=True):
                self._runners.append(loop.run_until_complete(start_fake(fake, self.host, port)))
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.run_until_complete(self._cleanup())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _cleanup(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
