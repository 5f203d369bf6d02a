"""One `monitoring_update` payload from every instance's report and the shared figures.

Instance reports (one per live instance: this one, and the others' from Redis) carry what only that process
knows: its tables (calls, streams, ...), tallies (connections), provider calls and loop lag. Shared figures
(recent calls, usage today, jobs) come from the database once, by the instance that builds the payload.
"""

from __future__ import annotations

import time
from typing import Any

# Tables the payload always has, even before the feature that fills them is running.
CORE_TABLES = ("active_calls", "live_streams")
SHARED_DEFAULTS: dict[str, Any] = {"recent_calls": [], "usage_today": [], "jobs": None}


def merge(
    reports: list[dict[str, Any]],
    shared: dict[str, Any],
    *,
    served_by: str,
    scope: str,
    errors: dict[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    ordered = sorted(reports, key=lambda r: (r.get("instance") != served_by, str(r.get("instance"))))
    payload: dict[str, Any] = {
        "timestamp": now,
        "served_by": served_by,
        "scope": scope,
        "instance_count": len(ordered),
        "instances": [_instance(r, served_by, now) for r in ordered],
    }
    figures: dict[str, dict[str, Any]] = {}
    tables: dict[str, list[dict[str, Any]]] = {key: [] for key in CORE_TABLES}
    totals: dict[str, int] = {key: 0 for key in CORE_TABLES}
    tallies: dict[str, dict[str, float]] = {}
    for report in ordered:
        for described in report.get("figures", []):
            figures.setdefault(described["key"], described)
        for key, rows in (report.get("tables") or {}).items():
            tables.setdefault(key, []).extend(rows)
        for key, count in (report.get("totals") or {}).items():
            totals[key] = totals.get(key, 0) + int(count)
        for name, counts in (report.get("tallies") or {}).items():
            merged = tallies.setdefault(name, {})
            for label, value in counts.items():
                merged[label] = merged.get(label, 0) + value
    payload.update(tables)
    payload["totals"] = totals
    core = [figures.pop(key) for key in CORE_TABLES if key in figures]
    payload["figures"] = core + sorted(figures.values(), key=lambda f: str(f.get("title")))
    payload["connections"] = {k: int(v) for k, v in sorted(tallies.pop("connections", {}).items())}
    payload["tallies"] = {name: {k: v for k, v in sorted(c.items())} for name, c in sorted(tallies.items())}
    payload["provider_status"] = merge_providers([r.get("provider_status") or {} for r in ordered])
    payload["event_loop_lag_ms"] = worst_lag(ordered)
    for key, default in SHARED_DEFAULTS.items():
        payload[key] = shared.get(key, default)
    payload["errors"] = dict(sorted((errors or {}).items()))
    return payload


def _instance(report: dict[str, Any], served_by: str, now: float) -> dict[str, Any]:
    reported_at = float(report.get("reported_at") or now)
    tallies = report.get("tallies") or {}
    return {
        "instance": report.get("instance"),
        "version": report.get("version"),
        "uptime_s": report.get("uptime_s"),
        "draining": bool(report.get("draining")),
        "reported_at": reported_at,
        "age_s": round(max(0.0, now - reported_at), 3),
        "period_s": report.get("period_s"),
        "this": report.get("instance") == served_by,
        "connections": {k: _count(v) for k, v in sorted((tallies.get("connections") or {}).items())},
        "totals": report.get("totals") or {},
        "event_loop_lag_ms": report.get("event_loop_lag_ms") or {},
        "monitoring": report.get("monitoring") or {},
    }


def _count(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def merge_providers(statuses: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Counts add up; the rate is recomputed; the latest error wins; latency is the worst instance's."""
    merged: dict[str, dict[str, Any]] = {}
    for status in statuses:
        for name, entry in status.items():
            into = merged.get(name)
            if into is None:
                merged[name] = {**entry, "latency_ms": dict(entry.get("latency_ms") or {})}
                continue
            into["configured"] = bool(into.get("configured")) or bool(entry.get("configured"))
            for counter in ("requests", "errors", "requests_total", "errors_total"):
                into[counter] = int(into.get(counter) or 0) + int(entry.get(counter) or 0)
            if (entry.get("last_error_at") or 0) > (into.get("last_error_at") or 0):
                into["last_error"], into["last_error_at"] = entry.get("last_error"), entry.get("last_error_at")
            latency = into["latency_ms"]
            for pct, value in (entry.get("latency_ms") or {}).items():
                if value is not None and (latency.get(pct) is None or value > latency[pct]):
                    latency[pct] = value
    for entry in merged.values():
        requests = int(entry.get("requests") or 0)
        entry["error_rate"] = round(int(entry.get("errors") or 0) / requests, 4) if requests else 0.0
    return dict(sorted(merged.items()))


def worst_lag(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99/max of the instance whose p99 is worst (each instance's own figures are in `instances`)."""
    worst: dict[str, Any] = {"p50": None, "p99": None, "max": None, "instance": None}
    for report in reports:
        lag = report.get("event_loop_lag_ms") or {}
        if lag.get("p99") is None:
            continue
        if worst["p99"] is None or lag["p99"] > worst["p99"]:
            worst = {
                "p50": lag.get("p50"),
                "p99": lag["p99"],
                "max": lag.get("max"),
                "instance": report.get("instance"),
            }
    return worst
