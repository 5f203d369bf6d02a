"""One drain sequence for every connection kind, started by SIGTERM (or lifespan shutdown).

1. Mark not ready: `/health` answers 503 so balancers stop routing here.
2. Drain the features, most recent first, within DRAIN_TIMEOUT_S: jobs go back to the queue, streams
   finalise, calls move.
3. Close Socket.IO clients: `instance_down` and DISCONNECT back to back, then the Engine.IO sessions,
   then tell the other instances' clients through the message queue.
4. Close plain WebSockets (1001), waiting for their handlers within the same deadline.
5. Cancel hypercorn's keep-alive ping tasks so shutdown does not wait a ping interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import socketio

from ..features import Feature
from ..resources import Resources
from ..version import VERSION
from . import internals

log = logging.getLogger(__name__)

WEBSOCKET_CLOSE_S = 3.0


class Drainer:
    def __init__(self, resources: Resources, features: Sequence[Feature], timeout_s: float) -> None:
        self.resources = resources
        self.features = list(features)
        self.timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._triggers: list[asyncio.Task[None]] = []

    async def drain(self) -> None:
        """Run the sequence once; later calls wait for the first."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="drain")
        await asyncio.shield(self._task)

    def start_soon(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="drain")

    async def _drain(self) -> None:
        rs = self.resources
        rs.readiness.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        await self._drain_features(deadline)
        await close_socketio_clients(rs)
        closed = await rs.websockets.close_all(max(0.1, min(WEBSOCKET_CLOSE_S, deadline - loop.time())))
        internals.cancel_websocket_keepalive_pings()
        log.info("drained Socket.IO clients and %d plain WebSockets", closed)

    async def _drain_features(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        tasks = {
            loop.create_task(feature.drain(deadline), name=f"drain-{feature.name}"): feature
            for feature in reversed(self.features)
        }
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("feature %s failed to drain: %r", tasks[task].name, task.exception())
        for task in pending:
            log.warning("feature %s did not drain within %.0fs", tasks[task].name, self.timeout_s)
            task.cancel()

    # ----- triggers ---------------------------------------------------------------------------------

    def install_triggers(self) -> None:
        """Drain as SIGTERM arrives (single process) or as the hypercorn parent stops the workers."""
        event = internals.worker_shutdown_event()
        if event is not None:
            self._triggers.append(asyncio.get_running_loop().create_task(self._watch(event), name="drain-watch"))
        elif internals.hypercorn_owns_sigint():
            self._take_over_sigterm()

    def remove_triggers(self) -> None:
        for task in self._triggers:
            task.cancel()

    def _take_over_sigterm(self) -> None:
        """Hypercorn waits for open WebSockets before lifespan shutdown, so drain as SIGTERM arrives.

        In single-process mode hypercorn's SIGTERM handler lives on this loop; we take SIGTERM over, start
        the drain, and hand the shutdown back to hypercorn through SIGINT (which it also handles).
        """
        loop = asyncio.get_running_loop()

        def on_sigterm() -> None:
            log.info("SIGTERM: draining Socket.IO clients, WebSockets and features, then shutting down")
            self.start_soon()
            signal.raise_signal(signal.SIGINT)

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    async def _watch(self, event: object) -> None:
        """Hypercorn's parent sets the event on SIGTERM and polls it every 0.1 s; so do we."""
        while not event.is_set():  # type: ignore[attr-defined]  # noqa: ASYNC110 - a multiprocessing.Event
            await asyncio.sleep(0.1)
        log.info("shutdown requested: draining Socket.IO clients, WebSockets and features")
        await self.drain()


async def announce(rs: Resources, event: str) -> None:
    """Tell every client of every instance (through Redis when configured) that this instance came or goes."""
    try:
        await asyncio.wait_for(
            rs.sio.emit(event, {"instance": rs.settings.instance_id, "version": VERSION}, namespace="/"), 3
        )
    except Exception as exc:  # the message queue being down must not stop boot or shutdown
        log.warning("could not announce %s: %s", event, exc)


async def close_socketio_clients(rs: Resources) -> None:
    """`instance_down` then DISCONNECT to this process's clients, then the other instances' clients."""
    sio = rs.sio
    # This process's clients get `instance_down` and the DISCONNECT queued back to back, with nothing in
    # between that yields to the event loop: a long-polling client must find both in the one response to
    # its pending GET, because hypercorn, now shutting down, closes that connection after the response
    # and accepts no new one, so a second poll would hang. (sio.emit yields between queuing and
    # returning, which let the pending poll go out with the event alone.)
    notice = sio.packet_class(
        socketio.packet.EVENT,
        namespace="/",
        data=["instance_down", {"instance": rs.settings.instance_id, "version": VERSION}],
    )
    manager = sio.manager
    for namespace in list(manager.get_namespaces()):
        for sid, eio_sid in list(manager.get_participants(namespace, None)):
            with contextlib.suppress(Exception):
                if namespace == "/":
                    await internals.send_packet_now(sio, eio_sid, notice)
                await sio.disconnect(sid, namespace=namespace, ignore_queue=True)
    # End the Engine.IO sessions too (their CLOSE packet follows in the same response), so a polling
    # client's next request is refused at once instead of waiting in a long-poll that nothing will answer.
    await internals.close_engineio_sessions(sio)
    # Then the other instances' clients, through the message queue (none of ours are left to get it twice).
    await announce(rs, "instance_down")
