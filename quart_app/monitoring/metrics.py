"""Prometheus metrics of this process, in a registry of its own (each app instance, each test, has one).

Scraped per instance (`GET /metrics`, or METRICS_BIND): every figure here is this process's. Label values come
from small fixed sets: route templates (never raw paths), provider names, error codes, namespaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from .figures import FigureRegistry

PREFIX = "voice_"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # 404s and 405s: the path the client sent is never a label value
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
JOB_STATES = ("queued", "running", "failed")
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus version reads


class _Figures(Collector):
    """The registered figures, read at scrape time."""

    def __init__(self, figures: FigureRegistry) -> None:
        self.figures = figures

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        _, totals, _ = self.figures.read_tables()
        for table in self.figures.tables:
            if table.key in totals:
                gauge = GaugeMetricFamily(PREFIX + table.key, table.help)
                gauge.add_metric([], totals[table.key])
                yield gauge
        tallies, _ = self.figures.read_tallies()
        for tally in self.figures.tallies:
            if tally.name in tallies:
                family = GaugeMetricFamily(PREFIX + tally.name, tally.help, labels=[tally.label])
                for value, count in sorted(tallies[tally.name].items()):
                    family.add_metric([value], count)
                yield family
        counters, _ = self.figures.read_counters()
        for counter in self.figures.counters:
            if counter.name in counters:
                total = CounterMetricFamily(PREFIX + counter.name, counter.help, labels=[counter.label])
                for value, count in sorted(counters[counter.name].items()):
                    total.add_metric([value], count)
                yield total


class Metrics:
    def __init__(self, figures: FigureRegistry, *, instance: str, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.http = Histogram(
            PREFIX + "http_request_duration_seconds",
            "HTTP requests served by Quart (not Socket.IO or WebSockets), by route template and status.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.provider_latency = Histogram(
            PREFIX + "provider_request_duration_seconds",
            "Calls to an upstream provider, by provider and kind (transcribe, translate, live, realtime).",
            ["provider", "kind"],
            buckets=PROVIDER_BUCKETS,
            registry=reg,
        )
        self.provider_errors = Counter(
            PREFIX + "provider_errors",
            "Failed provider calls, by provider, kind and error code.",
            ["provider", "kind", "error"],
            registry=reg,
        )
        self.loop_lag = Histogram(
            PREFIX + "event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 0.25 s).",
            buckets=LAG_BUCKETS,
            registry=reg,
        )
        self.jobs = Gauge(
            PREFIX + "jobs",
            "Transcription jobs in the shared database: queued, running, and failed in the last 24 h.",
            ["state"],
            registry=reg,
        )
        self.subscribers = Gauge(
            PREFIX + "monitoring_subscribers", "Dashboards subscribed to /monitoring on this instance.", registry=reg
        )
        self.emitter = Gauge(
            PREFIX + "monitoring_emitter_running",
            "1 while this instance's monitoring_update emitter runs (only while it has subscribers).",
            registry=reg,
        )
        info = Gauge(PREFIX + "instance_info", "This instance: always 1.", ["instance", "version"], registry=reg)
        info.labels(instance, version).set(1)
        ProcessCollector(registry=reg)
        reg.register(_Figures(figures))

    def observe_http(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method.upper() if method.upper() in HTTP_METHODS else "OTHER"
        self.http.labels(method, route or UNMATCHED_ROUTE, str(status)).observe(max(0.0, seconds))

    def observe_provider(self, provider: str, kind: str, seconds: float, error: str | None) -> None:
        self.provider_latency.labels(provider, kind).observe(max(0.0, seconds))
        if error is not None:
            self.provider_errors.labels(provider, kind, error).inc()

    def observe_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)

    def set_jobs(self, counts: dict[str, int] | None) -> None:
        if counts is None:  # unknown right now (database down): no stale values
            self.jobs.clear()
            return
        for state in JOB_STATES:
            self.jobs.labels(state).set(counts.get(state, 0))

    def watch_emitter(self, subscribers: Callable[[], int], running: Callable[[], bool]) -> None:
        self.subscribers.set_function(lambda: float(subscribers()))
        self.emitter.set_function(lambda: 1.0 if running() else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
