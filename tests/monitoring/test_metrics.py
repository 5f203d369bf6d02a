"""GET /metrics: Prometheus text format parsed by prometheus-client's own parser, admin only (or on its own
address), with label values that stay few whatever paths clients send."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.live_server import free_port
from tests.support.users import make_user


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_metrics_are_admin_only_and_parse(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app() as (app, client):
        _, user_key = await make_user(app)
        _, admin_key = await make_user(app, role="admin")
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"x-api-key": user_key})).status_code == 403
        response = await client.get("/metrics", headers={"x-api-key": admin_key})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        found = families(await response.get_data(as_text=True))

    for name in (
        "voice_http_request_duration_seconds",
        "voice_provider_request_duration_seconds",
        "voice_provider_errors",
        "voice_event_loop_lag_seconds",
        "voice_jobs",
        "voice_connections",
        "voice_active_calls",
        "voice_live_streams",
        "voice_twilio_frames_relayed",
        "voice_monitoring_subscribers",
        "voice_monitoring_emitter_running",
        "voice_instance_info",
    ):
        assert name in found, name
    assert found["voice_provider_errors"].type == "counter"
    assert found["voice_twilio_frames_relayed"].type == "counter"
    connections = {s.labels["namespace"]: s.value for s in found["voice_connections"].samples}
    assert {"/", "/monitoring", "/audio-stream"} <= set(connections)
    assert {s.labels["state"] for s in found["voice_jobs"].samples} == {"queued", "running", "failed"}
    http = found["voice_http_request_duration_seconds"].samples
    # The refusals above were timed too, under their route template.
    assert {(s.labels["route"], s.labels["status"]) for s in http if s.name.endswith("_count")} >= {
        ("/metrics", "401"),
        ("/metrics", "403"),
    }


async def test_label_cardinality_stays_bounded_under_a_thousand_paths(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app() as (app, client):
        _, admin_key = await make_user(app, role="admin")
        for i in range(1000):
            unknown = f"/probe/{secrets.token_hex(6)}/{i}"
            assert (await client.get(unknown)).status_code == 404
            if i % 10 == 0:  # a real route with a path parameter: one template, whatever the id
                one = await client.get(
                    f"/api/transcriptions/trn_{secrets.token_hex(8)}", headers={"x-api-key": admin_key}
                )
                assert one.status_code in (404, 429)
        response = await client.get("/metrics", headers={"x-api-key": admin_key})
        text = await response.get_data(as_text=True)

    found = families(text)
    routes = {s.labels["route"] for s in found["voice_http_request_duration_seconds"].samples}
    assert {"unmatched", "/api/transcriptions/<transcription_id>"} <= routes and len(routes) < 10, routes
    assert not [r for r in routes if "probe" in r or "trn_" in r]
    series = {tuple(sorted(s.labels.items())) for f in found.values() for s in f.samples if s.name.startswith("voice_")}
    assert len(series) < 400, len(series)


async def test_metrics_on_their_own_address(make_app) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    async with make_app(METRICS_EXPOSURE="bind", METRICS_BIND=f"127.0.0.1:{port}") as (app, client):
        _, admin_key = await make_user(app, role="admin")
        assert (await client.get("/metrics", headers={"x-api-key": admin_key})).status_code == 404
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")  # no credential on the private address
        assert response.status_code == 200
        assert "voice_event_loop_lag_seconds" in families(response.text)
