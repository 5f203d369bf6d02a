"""Serving a Quart app as shipped (`asgi_application`: liveness first, Socket.IO around Quart) from hypercorn
inside the test's own loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from quart_app.app import asgi_application
from tests.support.live_server import free_port


@asynccontextmanager
async def serve_asgi(application: Any) -> AsyncIterator[int]:
    """`async with serve_asgi(asgi_app) as port:` any ASGI app on a real hypercorn on 127.0.0.1:port."""
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(application, config, shutdown_trigger=shutdown.wait))
    try:
        for _ in range(400):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        yield port
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def served(app: Quart, wrap: Callable[[Any], Any] | None = None) -> AsyncIterator[int]:
    """`async with served(app) as port:` the app as shipped on a real hypercorn, lifespan included, once its
    database is open.

    `wrap` (optional) gets the shipped ASGI app and returns the one to serve (a test's own router around it).
    """
    application = asgi_application(app)
    if wrap is not None:
        application = wrap(application)
    async with serve_asgi(application) as port:
        assert await app.extensions["resources"].database.wait_ready(20), "database did not open"
        yield port
