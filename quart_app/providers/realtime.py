"""OpenAI Realtime (the GA API) over the openai SDK's `client.realtime.connect`: a thin JSON transport.

    client = RealtimeClient(api_key, base_url=OPENAI_BASE_URL, websocket_base_url=OPENAI_REALTIME_URL)
    link = await client.connect("gpt-realtime")      # GET {websocket base}/realtime?model=gpt-realtime
    await link.send({"type": "session.update", "session": {...}})
    await link.send_text(prebuilt_json)               # the hot path: no transform, no validation
    event = await link.recv()                         # a dict, or None once the provider closed the socket
    await link.close()

The SDK never sends `OpenAI-Beta: realtime=v1` (the GA API refuses it). Events are read with `recv_bytes` +
`json.loads` and written as prebuilt JSON text: the SDK's pydantic transform and parse cost more than the relay
itself on every 20 ms frame. Text goes straight to the SDK's underlying `websockets` connection when it exposes
one: the SDK's `send_raw` adds a send queue (only useful with its automatic reconnection, which is not used here:
a provider close is the call's business) and an anyio task lookup per message, a third of the relay's CPU per
frame; `send_raw` is the fallback. A provider close of any kind (1000/1001 after `session_expired`, 1006 drop,
1011) makes `recv()` return None; the SDK's own event iterator would simply end on 1000/1001, so no close is an
exception here. What the events mean is the caller's business (`quart_app.calls.openai_speech`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


class RealtimeUnavailable(Exception):
    """The Realtime API could not be reached or refused the connection."""


class RealtimeLink:
    """One open Realtime WebSocket."""

    def __init__(self, connection: AsyncRealtimeConnection, model: str) -> None:
        self._connection = connection
        socket_send = getattr(getattr(connection, "_connection", None), "send", None)  # websockets ClientConnection
        self._send: Callable[[str], Awaitable[None]] = socket_send if callable(socket_send) else connection.send_raw
        self.model = model
        self.closed = False
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def send(self, event: dict[str, Any]) -> None:
        await self.send_text(json.dumps(event, separators=(",", ":")))

    async def send_text(self, data: str) -> None:
        """Send one JSON event as text. Raises ConnectionError once the socket is closed."""
        if self.closed:
            raise ConnectionError("the realtime session is closed")
        try:
            await self._send(data)
        except ConnectionClosed as exc:
            self._closed_by(exc)
            raise ConnectionError(f"the realtime session closed ({self.close_code})") from None

    async def recv(self) -> dict[str, Any] | None:
        """The next server event, or None once the socket is closed (by either side, any code)."""
        if self.closed:
            return None
        try:
            data = await self._connection.recv_bytes()
        except ConnectionClosed as exc:
            self._closed_by(exc)
            return None
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("realtime: ignoring a frame that is not JSON (%d bytes)", len(data))
            return {"type": "invalid_frame"}
        return event if isinstance(event, dict) else {"type": "invalid_frame"}

    def _closed_by(self, exc: ConnectionClosed) -> None:
        self.closed = True
        if self.close_code is None:
            received = exc.rcvd
            self.close_code = received.code if received is not None else 1006
            self.close_reason = received.reason if received is not None else ""

    async def close(self, within: float = 0.8) -> None:
        """Close the session; if the closing handshake takes longer than `within`, drop the connection."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self._connection.close(), within)
        except Exception as exc:  # noqa: BLE001 - closing an already broken socket, or a provider not answering
            log.debug("realtime: close failed (%r); aborting the connection", exc)
            transport = getattr(getattr(self._connection, "_connection", None), "transport", None)
            if transport is not None:
                transport.abort()


class RealtimeClient:
    """Builds Realtime connections for one API key. `websocket_base_url` includes `/v1` (e.g. a fake's
    `ws://127.0.0.1:PORT/v1`); unset, the SDK derives `wss://api.openai.com/v1` from the REST base URL."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, websocket_base_url=websocket_base_url, max_retries=0
        )
        self.connect_timeout = connect_timeout

    async def connect(self, model: str) -> RealtimeLink:
        """Open a session for `model` (on the URL, as the GA API wants). RealtimeUnavailable on any failure."""
        manager = self._client.realtime.connect(model=model)
        try:
            connection = await asyncio.wait_for(manager.enter(), self.connect_timeout)
        except TimeoutError:
            raise RealtimeUnavailable(f"no answer from the Realtime API within {self.connect_timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - handshake refusals, DNS, TLS: all mean "not now"
            raise RealtimeUnavailable(f"cannot open a Realtime session: {_describe(exc)}") from None
        return RealtimeLink(connection, model)

    async def close(self) -> None:
        await self._client.close()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}"
