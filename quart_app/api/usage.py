"""GET /api/usage: the caller's metered usage for one month, by service."""

from __future__ import annotations

import time

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from ..db import usage
from ..errors import APIError
from ..web.guards import current_principal, require_auth
from ..web.state import resources
from .schemas import UsageOut, UsageQuery

blueprint = Blueprint("usage", __name__)


@blueprint.get("/api/usage")
@validate_querystring(UsageQuery)
@validate_response(UsageOut)
@require_auth()
async def monthly_usage(query_args: UsageQuery) -> UsageOut:
    """Requests, audio seconds, characters and cost per service for `month` (UTC, YYYY-MM)."""
    month = query_args.month or time.strftime("%Y-%m", time.gmtime())
    try:
        summary = await usage.monthly_summary(resources().db(), current_principal().user.id, month)
    except ValueError as exc:
        raise APIError(400, "validation_error", str(exc), extra={"fields": {"month": str(exc)}}) from None
    return UsageOut(**summary)
