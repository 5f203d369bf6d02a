"""Figure sources for the features that exist today, written against the shape of what they expose.

Each adapter reads a feature's own bookkeeping through a small Protocol (no import of the feature, so a
feature may later register itself instead) and registers a `LiveTable` and, where it has one, a counter:

    register_calls(registry, realtime_calls)          # active_calls, twilio_frames_relayed_total
    register_streams(registry, lambda: sessions)      # live_streams

The app wiring (`sockets.monitoring.monitored`) calls them as it builds each feature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from .figures import Column, CounterFigure, FigureRegistry, LiveTable, Row, mask_phone


class CallInfoLike(Protocol):
    @property
    def call_sid(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def from_number(self) -> str | None: ...


class CallSessionLike(Protocol):
    @property
    def info(self) -> CallInfoLike: ...
    @property
    def phase(self) -> str: ...
    @property
    def now_ms(self) -> int: ...
    @property
    def last_latency_ms(self) -> int | None: ...
    @property
    def frames_in(self) -> int: ...
    @property
    def frames_out(self) -> int: ...


class CallsLike(Protocol):
    """`calls.feature.RealtimeCalls`: the live calls of this process by CallSid."""

    @property
    def calls(self) -> Mapping[str, CallSessionLike]: ...


class LiveSessionLike(Protocol):
    """`live.session.LiveTranscription`."""

    @property
    def session_id(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def default_language(self) -> str | None: ...
    @property
    def streaming(self) -> bool: ...


CALL_COLUMNS = (
    Column("call_sid", "Call"),
    Column("tenant_id", "Tenant"),
    Column("caller", "Caller"),
    Column("duration_s", "Duration", "seconds"),
    Column("last_latency_ms", "Last turn latency", "ms"),
    Column("phase", "Phase", "status"),
    Column("instance", "Instance"),
)
STREAM_COLUMNS = (
    Column("session_id", "Session"),
    Column("transport", "Transport"),
    Column("language", "Language"),
    Column("duration_s", "Streaming for", "seconds"),
    Column("instance", "Instance"),
)


def call_rows(calls: CallsLike) -> list[Row]:
    rows: list[Row] = []
    for session in list(calls.calls.values()):
        info = session.info
        rows.append(
            {
                "call_sid": info.call_sid,
                "tenant_id": info.tenant_id,
                "caller": mask_phone(info.from_number),
                "duration_s": round(session.now_ms / 1000, 1),
                "last_latency_ms": session.last_latency_ms,
                "phase": session.phase,
            }
        )
    rows.sort(key=lambda r: -float(r["duration_s"]))
    return rows


class FramesRelayed:
    """Media frames relayed by this process's calls, as a counter that only grows.

    Sessions keep their own counts; a session that has ended is folded into the total at its last reading.
    (Frames of an ended call after that reading are not seen: a counter kept by the calls feature itself would
    be exact.)
    """

    def __init__(self, calls: CallsLike) -> None:
        self.calls = calls
        self._last: dict[int, tuple[CallSessionLike, int, int]] = {}
        self._done_in = 0
        self._done_out = 0

    def totals(self) -> dict[str, float]:
        live = {id(s): s for s in list(self.calls.calls.values())}
        for key, (_, frames_in, frames_out) in list(self._last.items()):
            if key not in live:
                self._done_in += frames_in
                self._done_out += frames_out
                del self._last[key]
        for key, session in live.items():
            self._last[key] = (session, session.frames_in, session.frames_out)
        inbound = self._done_in + sum(v[1] for v in self._last.values())
        outbound = self._done_out + sum(v[2] for v in self._last.values())
        return {"inbound": float(inbound), "outbound": float(outbound)}


def register_calls(registry: FigureRegistry, calls: CallsLike) -> None:
    registry.add_table(
        LiveTable(
            key="active_calls",
            title="Active calls",
            help="Phone calls this instance is relaying now.",
            columns=CALL_COLUMNS,
            rows=lambda: call_rows(calls),
            empty="No active calls right now.",
        )
    )
    frames = FramesRelayed(calls)
    registry.add_counter(
        CounterFigure("twilio_frames_relayed", "Twilio media frames relayed, by direction.", "direction", frames.totals)
    )


class StreamClock:
    """When each live stream was first seen streaming (the sessions do not say when their stream began)."""

    def __init__(self, sessions: Callable[[], Iterable[LiveSessionLike]], clock: Callable[[], float]) -> None:
        self.sessions = sessions
        self.clock = clock
        self._since: dict[str, float] = {}

    def rows(self) -> list[Row]:
        now = self.clock()
        streaming = [s for s in list(self.sessions()) if s.streaming]
        seen = {s.session_id for s in streaming}
        for gone in set(self._since) - seen:
            del self._since[gone]
        rows: list[Row] = []
        for session in streaming:
            since = self._since.setdefault(session.session_id, now)
            rows.append(
                {
                    "session_id": session.session_id,
                    "transport": "websocket" if session.endpoint.startswith("ws") else "socket.io",
                    "language": session.default_language,
                    "duration_s": round(now - since, 1),
                }
            )
        rows.sort(key=lambda r: -float(r["duration_s"]))
        return rows


def register_streams(
    registry: FigureRegistry,
    sessions: Callable[[], Iterable[LiveSessionLike]],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    registry.add_table(
        LiveTable(
            key="live_streams",
            title="Live transcription streams",
            help="Live transcription streams (started and not stopped) on this instance now.",
            columns=STREAM_COLUMNS,
            rows=StreamClock(sessions, clock).rows,
            empty="No live streams right now.",
        )
    )
