"""This instance among the others relaying calls (#22): heartbeat, peers, and recovering calls whose instance died.

    cluster = CallCluster(settings, database, control, stream_twiml=twiml.connect_stream)
    await cluster.start()                   # heartbeat (CALLS_HEARTBEAT_S) and the lost-call sweeper
    await cluster.set_draining()            # peers stop counting on us, before any call is moved
    await cluster.ready_peers()             # other instances taking calls (a move needs one)
    cluster.resume_twiml(call_sid, ...)     # `<Connect><Stream>` with `resume_call`: where a moved call goes

Every instance writes its heartbeat (`call_instances`: ready | draining, expiring after
CALLS_INSTANCE_EXPIRY_S) into the shared database. A call's open segment (`call_segments`) names the instance
relaying it; an open segment whose instance's heartbeat expired was lost in a crash. Every ready instance
sweeps for those every CALLS_RECOVERY_SWEEP_S (and checks on each Twilio status callback); the first to end
the segment as `lost` (a conditional UPDATE: the lease) owns the recovery: if Twilio still reports the call
`in-progress`, it replaces the call's TwiML with the resume stream, which the load balancer gives to a ready
instance. Others find the segment already ended and leave the call alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..db import call_segments, calls
from ..db.call_segments import DRAINING, READY, Segment
from ..db.handle import DatabaseHandle
from ..settings import Settings
from .control import CallControl

log = logging.getLogger(__name__)

STREAM_PATH = "/twilio/media-stream"
IN_PROGRESS = "in-progress"
TERMINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
DB_CALL_TIMEOUT_S = 2.0
UNAVAILABLE = "unavailable"  # a heartbeat state: alive, but takes no calls (no provider configured)

StreamTwiml = Callable[..., str]  # twiml.connect_stream(url, parameters, hold_s=...)


def default_stream_url(settings: Settings) -> str | None:
    """TWILIO_STREAM_URL, else the stream route on PUBLIC_BASE_URL (wss://), else None."""
    if settings.twilio_stream_url:
        return settings.twilio_stream_url
    if not settings.public_base_url:
        return None
    parts = urlsplit(settings.public_base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"


def resume_parameters(
    call_sid: str, tenant_id: str | None, from_number: str | None, to_number: str | None
) -> dict[str, str | None]:
    """The stream's `<Parameter>`s: those of the router's TwiML, plus `resume_call` (continue the stored call)."""
    return {
        "tenant": tenant_id,
        "caller": from_number,
        "called": to_number,
        "call_sid": call_sid,
        "resume_call": call_sid,
    }


class CallCluster:
    def __init__(
        self,
        settings: Settings,
        database: DatabaseHandle,
        control: CallControl,
        *,
        stream_twiml: StreamTwiml | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.control = control
        self.stream_twiml = stream_twiml
        self.instance_id = settings.instance_id
        self.state = READY
        self.recovered: list[str] = []  # calls this instance recovered (for logs and tests)
        self._tasks: list[asyncio.Task[None]] = []
        self._recovering: set[str] = set()
        self._warned = False
        self._started_at = time.time()

    @property
    def can_move(self) -> bool:
        """Calls can be moved or recovered only with Twilio REST and a TwiML builder."""
        return self.stream_twiml is not None and self.settings.providers()["twilio"].configured

    # ----- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="calls-heartbeat"),
            asyncio.create_task(self._sweep_loop(), name="calls-recovery-sweep"),
        ]

    async def set_draining(self) -> None:
        """Tell the peers this instance takes no more calls (awaited: before any call is moved)."""
        self.state = DRAINING
        await self._beat()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            gone = call_segments.instance_gone(self.database.get(), self.instance_id)
            await asyncio.wait_for(gone, DB_CALL_TIMEOUT_S)

    async def _beat(self) -> bool:
        try:
            await asyncio.wait_for(
                call_segments.heartbeat(
                    self.database.get(), self.instance_id, self.state, self.settings.calls_instance_expiry_s
                ),
                DB_CALL_TIMEOUT_S,
            )
        except Exception as exc:  # noqa: BLE001 - the database being down must not stop the loop
            if not self._warned:
                log.warning("calls: heartbeat not stored (%s); retrying", exc)
                self._warned = True
            return False
        self._warned = False
        return True

    async def _heartbeat_loop(self) -> None:
        while True:
            started = time.monotonic()
            await self._beat()
            await asyncio.sleep(max(0.0, self.settings.calls_heartbeat_s - (time.monotonic() - started)))

    async def _sweep_loop(self) -> None:
        inherited = True  # first: streams left open under this instance id by a process that died
        while True:
            await asyncio.sleep(self.settings.calls_recovery_sweep_s)
            if self.state != READY or not self.can_move or not self.database.ready.is_set():
                continue
            try:
                if inherited:
                    for segment in await call_segments.open_segments_of(self.database.get(), self.instance_id):
                        if segment.started_at < self._started_at:  # not a stream of this process
                            await self.recover(segment)
                    inherited = False
                await self.recover_lost()
            except Exception:  # noqa: BLE001 - one failed sweep must not end the sweeper
                log.exception("calls: recovery sweep failed")

    # ----- peers ---------------------------------------------------------------------------------------------

    async def ready_peers(self) -> list[str]:
        try:
            return await asyncio.wait_for(
                call_segments.ready_peers(self.database.get(), self.instance_id), DB_CALL_TIMEOUT_S
            )
        except Exception as exc:  # noqa: BLE001 - unknown peers: no move
            log.warning("calls: could not read the other instances: %s", exc)
            return []

    # ----- where a call goes ---------------------------------------------------------------------------------

    def resume_twiml(
        self,
        call_sid: str,
        *,
        tenant_id: str | None,
        from_number: str | None,
        to_number: str | None,
        stream_url: str | None,
    ) -> str | None:
        url = stream_url or default_stream_url(self.settings)
        if self.stream_twiml is None or not url:
            return None
        parameters = resume_parameters(call_sid, tenant_id, from_number, to_number)
        return self.stream_twiml(url, parameters, hold_s=self.settings.calls_recovery_hold_s)

    # ----- recovery ------------------------------------------------------------------------------------------

    async def recover_lost(self) -> int:
        """Recover every call whose instance died; returns how many this instance took over."""
        lost = await call_segments.lost_segments(self.database.get(), exclude=self.instance_id)
        taken = 0
        for segment in lost:
            if await self.recover(segment):
                taken += 1
        return taken

    async def on_status(self, call_sid: str, status: str) -> None:
        """A Twilio status callback: a call whose relaying instance is gone is recovered (in progress) or its
        lost segment closed (ended)."""
        if self.state != READY or not self.can_move:
            return
        db = self.database.get()
        segment = await call_segments.open_segment(db, call_sid)
        if segment is None or await call_segments.instance_alive(db, segment.instance_id):
            return
        if status in TERMINAL:
            if await call_segments.claim_lost(db, segment, by=self.instance_id):
                await calls.relay_ended(
                    db, call_sid, end_reason="lost", ended_at=time.time(), stream_sid=segment.stream_sid
                )
            return
        await self.recover(segment)

    async def recover(self, segment: Segment) -> bool:
        """Take the lease on a lost call and, if Twilio still has it in progress, reconnect it. True if this
        instance sent the call to a new stream."""
        call_sid = segment.call_sid
        if call_sid in self._recovering:
            return False
        self._recovering.add(call_sid)
        try:
            db = self.database.get()
            if not await call_segments.claim_lost(db, segment, by=self.instance_id):
                return False  # another instance holds the lease (or the stream ended meanwhile)
            status = await self.control.call_status(call_sid)
            record = await calls.get_call(db, call_sid)
            twiml = None
            if record is not None:
                twiml = self.resume_twiml(
                    call_sid,
                    tenant_id=record.tenant_id,
                    from_number=record.from_number,
                    to_number=record.to_number,
                    stream_url=segment.stream_url,
                )
            if status != IN_PROGRESS or twiml is None:
                log.info("call %s lost with instance %s: not recovered (%s)", call_sid, segment.instance_id, status)
                await calls.relay_ended(
                    db, call_sid, end_reason="lost", ended_at=time.time(), stream_sid=segment.stream_sid
                )
                return False
            moved = await self.control.replace_twiml(call_sid, twiml)
            log.info(
                "call %s lost with instance %s: %s",
                call_sid,
                segment.instance_id,
                "reconnected to a new stream" if moved else "Twilio refused the update",
            )
            if moved:
                self.recovered.append(call_sid)
            return moved
        finally:
            self._recovering.discard(call_sid)
