"""Monitoring's parts without a server: figures, masking, merging reports, provider calls, the adapters, and
the service's one emitter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from quart_app.errors import APIError
from quart_app.monitoring.adapters import FramesRelayed, StreamClock, call_rows, register_calls, register_streams
from quart_app.monitoring.figures import Column, FigureRegistry, LiveTable, Tally, mask_phone
from quart_app.monitoring.hub import Monitoring
from quart_app.monitoring.metrics import Metrics
from quart_app.monitoring.providers import ProviderCalls, instrument, percentile
from quart_app.monitoring.service import MonitoringService
from quart_app.monitoring.snapshot import merge, merge_providers
from quart_app.providers.registry import Providers
from quart_app.providers.results import TranslationResult
from quart_app.settings import Settings


def test_callers_are_masked_to_prefix_and_last_four() -> None:
    assert mask_phone("+15551234567") == "+1••••••4567"
    assert mask_phone("+447700900123") == "+4•••••••0123"
    assert mask_phone("client:alice") == "••••••••••ce"
    assert mask_phone("1234") == "••••"
    assert mask_phone(None) is None and mask_phone("") is None


def test_registry_refuses_bad_names_and_survives_a_failing_source() -> None:
    registry = FigureRegistry()
    table = LiveTable("assistant_sessions", "Assistant", "Sessions now.", (Column("id", "Id"),), lambda: [{"id": 1}])
    registry.add_table(table)
    with pytest.raises(ValueError):
        registry.add_table(table)
    with pytest.raises(ValueError):
        registry.add_table(LiveTable("connections", "x", "x", (), list))  # a key of the update itself
    with pytest.raises(ValueError):
        registry.add_tally(Tally("Bad-Name", "x", "y", dict))

    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("boom")

    registry.add_table(LiveTable("broken", "Broken", "x", (), broken))
    rows, totals, failed = registry.read_tables()
    assert rows == {"assistant_sessions": [{"id": 1}]} and totals == {"assistant_sessions": 1} and failed == ["broken"]


def _report(instance: str, **extra: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "instance": instance,
        "version": "1.0",
        "uptime_s": 10.0,
        "reported_at": 100.0,
        "figures": [{"key": "live_streams", "title": "Streams"}, {"key": "active_calls", "title": "Calls"}],
        "tables": {"active_calls": [{"call_sid": f"CA-{instance}", "instance": instance}], "live_streams": []},
        "totals": {"active_calls": 1, "live_streams": 0},
        "tallies": {"connections": {"/": 1.0, "/monitoring": 1.0}},
        "provider_status": {},
        "event_loop_lag_ms": {"p50": 1.0, "p99": 2.0, "max": 3.0},
    }
    report.update(extra)
    return report


def test_merge_adds_up_instances_and_keeps_each_row_s_instance() -> None:
    a = _report("a", event_loop_lag_ms={"p50": 1.0, "p99": 9.0, "max": 12.0})
    b = _report("b")
    payload = merge([b, a], {"recent_calls": [{"call_sid": "CA1"}]}, served_by="a", scope="cluster", now=101.0)
    assert [i["instance"] for i in payload["instances"]] == ["a", "b"] and payload["instance_count"] == 2
    assert payload["instances"][0]["this"] and payload["instances"][1]["age_s"] == 1.0
    assert {r["instance"] for r in payload["active_calls"]} == {"a", "b"}
    assert payload["totals"] == {"active_calls": 2, "live_streams": 0}
    assert payload["connections"] == {"/": 2, "/monitoring": 2}
    assert payload["event_loop_lag_ms"] == {"p50": 1.0, "p99": 9.0, "max": 12.0, "instance": "a"}
    assert [f["key"] for f in payload["figures"]] == ["active_calls", "live_streams"]
    assert payload["recent_calls"] == [{"call_sid": "CA1"}] and payload["usage_today"] == []
    # Without any report of a feature, its core table is still there (empty).
    assert merge([], {}, served_by="a", scope="local")["active_calls"] == []


def test_provider_figures_merge_counts_and_keep_the_latest_error() -> None:
    a = {"openai": {"configured": True, "requests": 3, "errors": 1, "last_error": "old", "last_error_at": 5.0}}
    b = {"openai": {"configured": True, "requests": 1, "errors": 1, "last_error": "new", "last_error_at": 9.0}}
    merged = merge_providers([a, b])["openai"]
    assert merged["requests"] == 4 and merged["errors"] == 2 and merged["error_rate"] == 0.5
    assert merged["last_error"] == "new"


async def test_provider_calls_count_time_and_label_errors() -> None:
    seen: list[tuple[str, str, str | None]] = []
    calls = ProviderCalls({"openai": True, "deepgram": False}, on_observe=lambda p, k, s, e: seen.append((p, k, e)))
    async with calls.measure("openai", "translate"):
        pass
    with pytest.raises(APIError):
        async with calls.measure("openai", "translate"):
            raise APIError(504, "provider_timeout", "openai did not answer within 60s")
    with pytest.raises(KeyError):
        async with calls.measure("openai", "translate"):
            raise KeyError("x")
    status = calls.status()
    assert status["deepgram"]["configured"] is False and status["deepgram"]["requests"] == 0
    openai = status["openai"]
    assert openai["requests"] == 3 and openai["errors"] == 2 and openai["error_rate"] == round(2 / 3, 4)
    assert openai["last_error"] == "translate: KeyError"
    assert seen == [
        ("openai", "translate", None),
        ("openai", "translate", "provider_timeout"),
        ("openai", "translate", "exception"),
    ]
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert percentile([], 50) is None


async def test_instrument_wraps_each_provider_once() -> None:
    class Echo:
        name = "openai"

        async def translate(self, text: str, target: str, source: str | None) -> TranslationResult:
            return TranslationResult(translation=text[::-1], model="m")

    calls = ProviderCalls({"openai": True})
    providers = Providers(Settings.from_env({}), {}, {"openai": Echo()})
    instrument(instrument(providers, calls), calls)
    result = await providers.translator("openai").translate("abc", "es", None)
    assert result.translation == "cba" and calls.status()["openai"]["requests"] == 1


@dataclass
class _Info:
    call_sid: str
    tenant_id: str = "ten_1"
    from_number: str | None = "+15551234567"


@dataclass
class _Session:
    info: _Info
    phase: str = "live"
    now_ms: int = 0
    last_latency_ms: int | None = None
    frames_in: int = 0
    frames_out: int = 0


@dataclass
class _Calls:
    calls: dict[str, _Session] = field(default_factory=dict)


def test_calls_adapter_rows_and_a_frames_counter_that_only_grows() -> None:
    feature = _Calls()
    feature.calls["CA1"] = _Session(_Info("CA1"), now_ms=5000, last_latency_ms=300, frames_in=10, frames_out=4)
    feature.calls["CA2"] = _Session(_Info("CA2", from_number=None), now_ms=9000)
    rows = call_rows(feature)
    assert [r["call_sid"] for r in rows] == ["CA2", "CA1"]  # longest first
    assert rows[1] == {
        "call_sid": "CA1",
        "tenant_id": "ten_1",
        "caller": "+1••••••4567",
        "duration_s": 5.0,
        "last_latency_ms": 300,
        "phase": "live",
    }
    frames = FramesRelayed(feature)
    assert frames.totals() == {"inbound": 10.0, "outbound": 4.0}
    feature.calls["CA1"].frames_in = 25
    del feature.calls["CA2"]
    assert frames.totals() == {"inbound": 25.0, "outbound": 4.0}
    del feature.calls["CA1"]  # ended: its frames stay counted
    assert frames.totals() == {"inbound": 25.0, "outbound": 4.0}
    registry = FigureRegistry()
    register_calls(registry, feature)
    assert [t.key for t in registry.tables] == ["active_calls"] and registry.read_counters()[0] == {
        "twilio_frames_relayed": {"inbound": 0.0, "outbound": 0.0}
    }


@dataclass
class _Live:
    session_id: str
    endpoint: str = "ws /audio-stream"
    default_language: str | None = "en"
    streaming: bool = True


def test_streams_adapter_lists_streaming_sessions_with_their_age() -> None:
    now = [100.0]
    sessions = [_Live("lts_a"), _Live("lts_b", endpoint="socket.io /audio-stream", streaming=False)]
    clock = StreamClock(lambda: sessions, lambda: now[0])
    assert clock.rows() == [{"session_id": "lts_a", "transport": "websocket", "language": "en", "duration_s": 0.0}]
    now[0] = 112.5
    sessions[1].streaming = True
    rows = clock.rows()
    assert [(r["session_id"], r["duration_s"]) for r in rows] == [("lts_a", 12.5), ("lts_b", 0.0)]
    registry = FigureRegistry()
    register_streams(registry, lambda: sessions)
    assert registry.read_tables()[1] == {"live_streams": 2}


class _NoDatabase:
    ready = asyncio.Event()

    def get(self) -> Any:
        raise RuntimeError("no database in this test")


async def test_the_emitter_runs_once_for_all_subscribers_and_only_while_there_are_any() -> None:
    settings = Settings.from_env({"INSTANCE_ID": "unit"})
    sent: list[tuple[str, dict[str, Any]]] = []
    both = asyncio.Event()

    async def send(sid: str, payload: dict[str, Any]) -> None:
        sent.append((sid, payload))
        if {s for s, _ in sent} == {"a", "b"}:
            both.set()

    service = MonitoringService(
        Monitoring(settings),
        settings,
        _NoDatabase(),
        None,
        uptime_s=lambda: 1.0,
        draining=lambda: False,
        send=send,  # type: ignore[arg-type]
    )
    assert not service.emitter_running
    with pytest.raises(ValueError):
        service.subscribe("x", 0.5)
    service.subscribe("a", 1)
    service.subscribe("b", 2)
    await asyncio.wait_for(both.wait(), 20)
    payload = sent[0][1]
    assert payload["errors"]["recent_calls"] == "database_unavailable" and payload["instances"][0]["instance"] == "unit"
    assert len([t for t in asyncio.all_tasks() if t.get_name() == "monitoring-emitter"]) == 1
    service.unsubscribe("a")
    assert service.emitter_running
    service.unsubscribe("b")
    for _ in range(100):
        if not service.emitter_running:
            break
        await asyncio.sleep(0.05)
    assert not service.emitter_running
    await service.stop()


def test_metrics_label_values_are_route_templates_and_known_methods() -> None:
    metrics = Metrics(FigureRegistry(), instance="i", version="v")
    metrics.observe_http("BREW", None, 404, 0.01)
    metrics.observe_http("get", "/api/calls/<call_sid>", 200, 0.01)
    text = metrics.exposition().decode()
    assert 'method="OTHER",route="unmatched",status="404"' in text
    assert 'method="GET",route="/api/calls/<call_sid>",status="200"' in text


def test_monitoring_settings_are_checked() -> None:
    from quart_app.settings import SettingsError

    defaults = Settings.from_env({})
    assert (defaults.monitoring_report_s, defaults.metrics_exposure, defaults.metrics_bind) == (
        5.0,
        "admin",
        "127.0.0.1:9464",
    )
    assert Settings.from_env({"METRICS_EXPOSURE": "BIND", "METRICS_BIND": "0.0.0.0:9100"}).metrics_exposure == "bind"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"MONITORING_REPORT_S": "0.1", "METRICS_EXPOSURE": "public", "METRICS_BIND": "9100"})
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "METRICS_BIND",
        "METRICS_EXPOSURE",
        "MONITORING_REPORT_S",
    ]
