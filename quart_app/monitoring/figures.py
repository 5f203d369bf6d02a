"""Figures: what each feature reports about itself, registered once and read on demand.

A feature (or the app wiring, through a small adapter) registers its figures in the process's
`FigureRegistry`; the dashboard, the Redis report and `/metrics` read them from there, so a new feature adds
its figures without touching any of them:

    registry.add_table(LiveTable(
        key="active_calls", title="Active calls", help="Phone calls relayed by this instance now.",
        columns=(Column("call_sid", "Call"), Column("caller", "Caller"), Column("duration_s", "Duration", "seconds")),
        rows=lambda: [{"call_sid": ..., "caller": mask_phone(...), "duration_s": 12.5}],
    ))
    registry.add_tally(Tally("connections", "Clients connected, by namespace.", "namespace", counts))
    registry.add_counter(CounterFigure("twilio_frames_relayed", "Media frames relayed.", "direction", totals))

- A `LiveTable` is what is live now, one row per item (calls, streams, assistant sessions). The update
  carries its rows under `key` (every instance's rows, each tagged with its `instance`), the dashboard draws it
  from `columns`, and `/metrics` exports `voice_<key>` = its number of rows.
- A `Tally` is a set of current counts under one label (connections per namespace): summed across instances,
  exported as the gauge `voice_<name>{<label>=...}`.
- A `CounterFigure` only grows (frames relayed): exported as `voice_<name>_total{<label>=...}`.

Every callable is synchronous and cheap (it reads the feature's own memory); one that raises is logged and
reported as missing, never breaks an update. Label values must come from a small fixed set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Row = dict[str, Any]  # JSON values only
ColumnKind = Literal["text", "seconds", "ms", "time", "number", "status"]

# Keys the update itself uses: a table may not take one of them.
RESERVED_KEYS = frozenset(
    {
        "timestamp",
        "served_by",
        "scope",
        "interval_s",
        "instances",
        "instance_count",
        "connections",
        "recent_calls",
        "usage_today",
        "provider_status",
        "event_loop_lag_ms",
        "jobs",
        "figures",
        "totals",
        "tallies",
        "errors",
        "monitoring",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_ROWS = 200  # rows of one table one instance reports (the update says how many there were in all)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: ColumnKind = "text"

    def public(self) -> dict[str, str]:
        return {"key": self.key, "label": self.label, "kind": self.kind}


@dataclass(frozen=True)
class LiveTable:
    key: str
    title: str
    help: str
    columns: tuple[Column, ...]
    rows: Callable[[], Sequence[Row]]
    empty: str = "Nothing right now."

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "empty": self.empty,
            "columns": [c.public() for c in self.columns],
        }


@dataclass(frozen=True)
class Tally:
    name: str
    help: str
    label: str
    counts: Callable[[], Mapping[str, float]]


@dataclass(frozen=True)
class CounterFigure:
    name: str
    help: str
    label: str
    totals: Callable[[], Mapping[str, float]]


class FigureRegistry:
    """The figures of one process, by name; registering the same name twice is a programming error."""

    def __init__(self) -> None:
        self._tables: dict[str, LiveTable] = {}
        self._tallies: dict[str, Tally] = {}
        self._counters: dict[str, CounterFigure] = {}

    def add_table(self, table: LiveTable) -> None:
        self._check(table.key, self._tables)
        if table.key in RESERVED_KEYS:
            raise ValueError(f"{table.key!r} is a key of the update itself")
        self._tables[table.key] = table

    def add_tally(self, tally: Tally) -> None:
        self._check(tally.name, self._tallies)
        self._tallies[tally.name] = tally

    def add_counter(self, counter: CounterFigure) -> None:
        self._check(counter.name, self._counters)
        self._counters[counter.name] = counter

    @staticmethod
    def _check(name: str, taken: Mapping[str, object]) -> None:
        if not _NAME.match(name):
            raise ValueError(f"figure names are lower_snake_case: {name!r}")
        if name in taken:
            raise ValueError(f"figure {name!r} is already registered")

    @property
    def tables(self) -> list[LiveTable]:
        return list(self._tables.values())

    @property
    def tallies(self) -> list[Tally]:
        return list(self._tallies.values())

    @property
    def counters(self) -> list[CounterFigure]:
        return list(self._counters.values())

    def read_tables(self) -> tuple[dict[str, list[Row]], dict[str, int], list[str]]:
        """Every table's rows (at most MAX_ROWS each), their full counts, and the tables that failed."""
        rows: dict[str, list[Row]] = {}
        totals: dict[str, int] = {}
        failed: list[str] = []
        for table in self._tables.values():
            try:
                found = list(table.rows())
            except Exception:
                log.exception("figure %s failed", table.key)
                failed.append(table.key)
                continue
            rows[table.key] = found[:MAX_ROWS]
            totals[table.key] = len(found)
        return rows, totals, failed

    def read_tallies(self) -> tuple[dict[str, dict[str, float]], list[str]]:
        return _read({t.name: t.counts for t in self._tallies.values()})

    def read_counters(self) -> tuple[dict[str, dict[str, float]], list[str]]:
        return _read({c.name: c.totals for c in self._counters.values()})


def _read(sources: Mapping[str, Callable[[], Mapping[str, float]]]) -> tuple[dict[str, dict[str, float]], list[str]]:
    values: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    for name, read in sources.items():
        try:
            values[name] = {str(k): float(v) for k, v in read().items()}
        except Exception:
            log.exception("figure %s failed", name)
            failed.append(name)
    return values, failed


MASK = "\u2022"  # •


def mask_phone(value: str | None) -> str | None:
    """A caller's number as operators may see it: the country prefix and the last four digits.

    "+15551234567" -> "+1•••••••4567"; a short or odd value ("client:alice", "266696687") keeps at most its
    last two characters. Nothing else of the number is ever sent to the dashboard.
    """
    if not value:
        return None
    text = str(value).strip()
    if text.startswith("+") and text[1:].isdigit() and len(text) >= 9:
        return text[:2] + MASK * (len(text) - 6) + text[-4:]
    if len(text) <= 4:
        return MASK * len(text)
    return MASK * (len(text) - 2) + text[-2:]
