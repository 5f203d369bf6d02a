"""GET /api/calls: recent phone calls as Twilio last reported them. Admin only."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from ..db import calls
from ..web.guards import require_auth
from ..web.state import resources
from .schemas import CallOut, CallPage, CallsQuery

blueprint = Blueprint("calls", __name__)


@blueprint.get("/api/calls")
@validate_querystring(CallsQuery)
@validate_response(CallPage)
@require_auth(admin=True)
async def recent_calls(query_args: CallsQuery) -> CallPage:
    """The most recently updated calls, newest first."""
    items = await calls.recent_calls(resources().db(), limit=query_args.limit)
    return CallPage(items=[CallOut(**c.__dict__) for c in items])
