"""Monitoring over HTTP: the dashboard's snapshot and usage chart (admin), Prometheus `/metrics`, and the
hooks that time every HTTP request for it.

    GET /api/monitoring/snapshot        the `monitoring_update` payload, built now
    GET /api/monitoring/usage?days=14   usage per UTC day and service (the dashboard's chart)
    GET /metrics                        Prometheus text format: admin credential (METRICS_EXPOSURE=admin), or 404
                                        here when the metrics are served on METRICS_BIND instead
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, current_app, g, request
from quart_schema import validate_querystring, validate_response

from ..errors import APIError
from ..monitoring import shared
from ..monitoring.feature import MonitoringFeature
from ..monitoring.metrics import CONTENT_TYPE
from ..resources import Resources
from ..web.guards import authenticate_request, require_auth
from ..web.state import RESOURCES, feature, resources

blueprint = Blueprint("monitoring", __name__)

START = "monitoring_started"


class SnapshotOut(BaseModel):
    """The `monitoring_update` payload (see docs/protocol.md); tables registered by features add keys."""

    model_config = ConfigDict(extra="allow")

    timestamp: float
    served_by: str
    scope: str = Field(description="cluster (Redis: every live instance) or local (this process)")
    instance_count: int
    instances: list[dict[str, Any]]
    active_calls: list[dict[str, Any]]
    live_streams: list[dict[str, Any]]
    connections: dict[str, int]
    recent_calls: list[dict[str, Any]]
    usage_today: list[dict[str, Any]]
    provider_status: dict[str, dict[str, Any]]
    event_loop_lag_ms: dict[str, Any]
    jobs: dict[str, int] | None
    totals: dict[str, int]
    figures: list[dict[str, Any]]
    errors: dict[str, str]


class UsageQuery(BaseModel):
    days: int = Field(default=14, ge=1, le=92)


class UsageSeries(BaseModel):
    service: str
    requests: list[int]
    cost_usd: list[float]
    audio_seconds: list[float]


class UsageByDayOut(BaseModel):
    days: list[str] = Field(description="UTC dates, oldest first")
    services: list[UsageSeries]


@blueprint.get("/api/monitoring/snapshot")
@validate_response(SnapshotOut)
@require_auth(admin=True)
async def snapshot() -> SnapshotOut:
    """The live operations figures (same payload as the `/monitoring` namespace's `monitoring_update`)."""
    payload = await feature(MonitoringFeature).service.snapshot()
    return SnapshotOut(**payload)


@blueprint.get("/api/monitoring/usage")
@validate_querystring(UsageQuery)
@validate_response(UsageByDayOut)
@require_auth(admin=True)
async def usage_by_day(query_args: UsageQuery) -> UsageByDayOut:
    """Every user's metered usage per UTC day and service, for the last `days` days (today included)."""
    data = await shared.usage_by_day(resources().db(), query_args.days)
    return UsageByDayOut(**data)


@blueprint.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this instance (text format 0.0.4). Admin credential; 404 with METRICS_EXPOSURE=bind."""
    rs = resources()
    if rs.settings.metrics_exposure != "admin":
        raise APIError(404, "not_found", "Metrics are served on this instance's METRICS_BIND address.")
    principal = await authenticate_request()
    if not principal.is_admin:
        raise APIError(403, "forbidden", "This action needs the admin role.")
    body = await feature(MonitoringFeature).render_metrics()
    return Response(body, content_type=CONTENT_TYPE)


# ----- HTTP request timing (registered by the app factory) --------------------------------------------------


async def start_request_timer() -> None:
    """A before_request hook, registered ahead of authentication so refusals are timed too."""
    g.setdefault(START, time.perf_counter())


async def observe_request(response: Response) -> Response:
    """An after_request hook: duration by method, route template (never the raw path) and status."""
    started = g.get(START)
    rs = current_app.extensions.get(RESOURCES)
    if started is not None and isinstance(rs, Resources):
        rule = request.url_rule.rule if request.url_rule is not None else None
        rs.monitoring.metrics.observe_http(request.method, rule, response.status_code, time.perf_counter() - started)
    return response
